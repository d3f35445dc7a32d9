//! `crate = "path"`: a crate that re-exports ergo under another path points the generated code
//! (serde's derive of a remote actor included) at it.

mod runtime {
    pub use ::ergo as engine;
}

use runtime::engine::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: f64,
}

#[derive(Default)]
struct Station {
    readings: Vec<Reading>,
}

#[actor(crate = "crate::runtime::engine", remote, mailbox = 16, msg = StationIn, api = StationOps)]
impl Station {
    #[init]
    fn boot(&mut self) -> Result<(), String> {
        self.readings.clear();
        Ok(())
    }

    #[handle]
    fn record(&mut self, reading: Reading) {
        self.readings.push(reading);
    }

    #[handle]
    fn mean(&self) -> Option<f64> {
        let n = self.readings.len();
        (n > 0).then(|| self.readings.iter().map(|r| r.value).sum::<f64>() / n as f64)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::builder("crate-path@localhost").start().await?;
    let station = node.spawn(Station::default()).await?;
    assert_eq!(station.mean().await?, None);
    station
        .record(Reading {
            sensor: "t1".to_owned(),
            value: 1.0,
        })
        .await?;
    let msg: StationIn =
        serde_json::from_str(r#"{"Record":{"reading":{"sensor":"t2","value":3.0}}}"#)?;
    station.cast(msg).await?;
    assert_eq!(StationOps::mean(&station).await?, Some(2.0));
    assert_eq!(<Station as Actor>::MAILBOX_CAPACITY, Some(16));
    Ok(())
}
