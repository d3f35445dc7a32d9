//! Quickstart: a few actors doing real work.
//!
//! A `WordCounter` per shard counts words of the lines it is given; a `Collector` merges their
//! tallies; a deliberately fragile `Parser` panics on malformed input and is monitored, so the
//! demo shows a crash that harms nobody else.
//!
//! Run with `cargo run --example quickstart`.

use std::collections::BTreeMap;
use std::time::Duration;

use ergo::prelude::*;

/// Counts words of the lines it receives.
#[derive(Default)]
struct WordCounter {
    counts: BTreeMap<String, u64>,
    lines: u64,
}

#[actor]
impl WordCounter {
    /// Counts the words of one line (a cast).
    #[handle]
    fn line(&mut self, text: String) {
        self.lines += 1;
        for word in text.split_whitespace() {
            let word = word
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            if !word.is_empty() {
                *self.counts.entry(word).or_default() += 1;
            }
        }
    }

    /// Hands the tally over and starts afresh (a call).
    #[handle]
    fn take(&mut self) -> (u64, BTreeMap<String, u64>) {
        (
            std::mem::take(&mut self.lines),
            std::mem::take(&mut self.counts),
        )
    }
}

/// Merges tallies and watches the shards.
#[derive(Default)]
struct Collector {
    total: BTreeMap<String, u64>,
    downs: Vec<String>,
}

#[actor]
impl Collector {
    #[handle]
    fn merge(&mut self, part: BTreeMap<String, u64>) {
        for (w, n) in part {
            *self.total.entry(w).or_default() += n;
        }
    }

    #[handle]
    fn watch(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.monitor(pid);
    }

    #[handle]
    fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<_> = self.total.iter().map(|(w, c)| (w.clone(), *c)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    #[handle]
    fn downs(&self) -> Vec<String> {
        self.downs.clone()
    }

    #[on_down]
    fn on_down(&mut self, down: Down) {
        self.downs
            .push(format!("{} went down: {}", down.pid, down.reason));
    }
}

/// Parses `key=value`; panics on anything else (to show crash isolation).
struct Parser;

#[actor]
impl Parser {
    #[handle]
    fn parse(&self, input: String) -> (String, String) {
        let (k, v) = input.split_once('=').expect("input must be key=value");
        (k.to_owned(), v.to_owned())
    }
}

const TEXT: &str = "\
Actors share nothing and talk by messages.
A crashed actor is restarted by its supervisor.
Messages to an actor arrive in the order they were sent.
Links and monitors tell an actor when another one dies.";

#[tokio::main]
async fn main() -> Result<(), ergo::Error> {
    // One line per panic: the crash below is part of the demo.
    std::panic::set_hook(Box::new(|info| eprintln!("(a process panicked: {info})")));
    let node = Node::builder("quickstart@localhost")
        .call_timeout(Duration::from_secs(2))
        .start()
        .await?;

    let shards = [
        node.spawn(WordCounter::default()).await?,
        node.spawn(WordCounter::default()).await?,
    ];
    let collector = node.spawn(Collector::default()).await?;
    node.register("collector", &collector)?;

    for (i, line) in TEXT.lines().enumerate() {
        shards[i % shards.len()].line(line.to_owned()).await?;
    }
    for (i, shard) in shards.iter().enumerate() {
        let (lines, counts) = shard.take().await?;
        println!(
            "shard {i} ({}) counted {lines} lines, {} distinct words",
            shard.pid(),
            counts.len()
        );
        collector.merge(counts).await?;
    }
    let top = collector.top(5).await?;
    println!("top words: {top:?}");

    let parser = node.spawn(Parser).await?;
    collector.watch(parser.pid()).await?;
    println!("parsed: {:?}", parser.parse("answer=42".into()).await?);
    match parser.parse("no equals sign".into()).await {
        Err(CallError::Exited(reason)) => println!("parser crashed as expected: {reason}"),
        other => println!("unexpected: {other:?}"),
    }
    // The crash harmed nobody else: the collector still answers and saw the Down notice.
    let found = node
        .whereis::<Collector>("collector")
        .expect("collector is registered");
    tokio::time::sleep(Duration::from_millis(20)).await;
    for d in found.downs().await? {
        println!("collector saw: {d}");
    }
    println!("still serving: top word is {:?}", found.top(1).await?);
    node.shutdown(Duration::from_secs(1)).await;
    println!("node shut down; {} processes left", node.process_count());
    Ok(())
}
