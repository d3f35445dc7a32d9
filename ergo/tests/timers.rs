//! Timers from a context: send_after, send_interval, cancellation, timers ending with their process.

mod common;

use std::time::Duration;

use common::node;
use ergo::prelude::*;

#[derive(Default)]
struct Clock {
    ticks: Vec<u32>,
    timer: Option<TimerRef>,
}

#[actor]
impl Clock {
    #[handle]
    fn tick(&mut self, n: u32) {
        self.ticks.push(n);
    }

    #[handle]
    fn after(&mut self, ms: u64, n: u32, ctx: &mut Ctx<Self>) {
        self.timer = Some(ctx.send_after(Duration::from_millis(ms), ClockMsg::Tick { n }));
    }

    #[handle]
    fn every(&mut self, ms: u64, ctx: &mut Ctx<Self>) {
        let mut n = 0;
        self.timer = Some(ctx.send_interval(Duration::from_millis(ms), move || {
            n += 1;
            ClockMsg::Tick { n }
        }));
    }

    #[handle]
    fn cancel(&mut self) {
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
    }

    #[handle]
    fn ticks(&self) -> Vec<u32> {
        self.ticks.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn send_after_delivers_once_after_the_delay() {
    let node = node("timer-after").await;
    let clock = node.spawn(Clock::default()).await.unwrap();
    clock.after(100, 7).await.unwrap();
    tokio::time::sleep(Duration::from_millis(99)).await;
    assert!(clock.ticks().await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(clock.ticks().await.unwrap(), vec![7]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(clock.ticks().await.unwrap(), vec![7]);
}

#[tokio::test(start_paused = true)]
async fn cancelled_timer_does_not_fire() {
    let node = node("timer-cancel").await;
    let clock = node.spawn(Clock::default()).await.unwrap();
    clock.after(100, 1).await.unwrap();
    clock.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(clock.ticks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn interval_repeats_until_cancelled() {
    let node = node("timer-interval").await;
    let clock = node.spawn(Clock::default()).await.unwrap();
    clock.every(10).await.unwrap();
    tokio::time::sleep(Duration::from_millis(35)).await;
    assert_eq!(clock.ticks().await.unwrap(), vec![1, 2, 3]);
    clock.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(clock.ticks().await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn timers_end_with_their_process() {
    let node = node("timer-owner").await;
    let clock = node.spawn(Clock::default()).await.unwrap();
    clock.every(10).await.unwrap();
    tokio::time::sleep(Duration::from_millis(15)).await;
    clock.kill();
    clock.wait().await;
    // Let any timer task notice; none may keep the node busy.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(node.process_count(), 0);
}
