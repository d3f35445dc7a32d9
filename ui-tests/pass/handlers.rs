//! Handlers of every shape: sync and async, `&self` and `&mut self`, the context first, between
//! arguments, last or absent, and casts, value replies and `Result` replies.

use std::time::Duration;

use ergo::prelude::*;

#[derive(Default)]
struct Account {
    balance: i64,
    notes: Vec<String>,
}

#[actor]
impl Account {
    /// A sync cast on `&mut self`.
    #[handle]
    fn deposit(&mut self, amount: i64) {
        self.balance += amount;
    }

    /// A sync call on `&self` with a value reply.
    #[handle]
    fn balance(&self) -> i64 {
        self.balance
    }

    /// A `Result` reply: the handler's own error arrives as the call's `Ok` value.
    #[handle]
    fn withdraw(&mut self, amount: i64) -> Result<i64, String> {
        if amount > self.balance {
            return Err(format!("insufficient funds: {} < {amount}", self.balance));
        }
        self.balance -= amount;
        Ok(self.balance)
    }

    /// An explicit `()` return is a cast too.
    #[handle]
    #[allow(clippy::unused_unit)]
    fn note(&mut self, text: String) -> () {
        self.notes.push(text);
    }

    /// The context alone.
    #[handle]
    fn whoami(&self, ctx: &mut Ctx<Self>) -> Pid {
        ctx.pid()
    }

    /// The context first, then arguments.
    #[handle]
    fn stamp(&mut self, ctx: &mut Ctx<Self>, text: String) -> String {
        format!("{}: {text}", ctx.pid())
    }

    /// The context between arguments; several arguments of compound types.
    #[handle]
    fn transfer(
        &mut self,
        to: Vec<String>,
        ctx: &mut Ctx<Self>,
        amount: Option<i64>,
    ) -> (usize, i64, bool) {
        let amount = amount.unwrap_or(0);
        self.balance -= amount * to.len() as i64;
        (to.len(), self.balance, ctx.myself().is_alive())
    }

    /// Async, the context last, `&mut self`, a value reply.
    #[handle]
    async fn deposit_later(&mut self, amount: i64, delay_ms: u64, ctx: &mut Ctx<Self>) -> i64 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        assert!(ctx.myself().is_alive());
        self.balance += amount;
        self.balance
    }

    /// Async on `&self`, a value reply.
    #[handle]
    async fn note_count(&self) -> usize {
        tokio::task::yield_now().await;
        self.notes.len()
    }

    /// Async cast with the context.
    #[handle]
    async fn close(&mut self, ctx: &mut Ctx<Self>) {
        tokio::task::yield_now().await;
        ctx.stop();
    }

    /// A raw identifier: the variant is `Match`, the method `r#match`.
    #[handle]
    fn r#match(&self, needle: String) -> bool {
        self.notes.iter().any(|n| n.contains(&needle))
    }

    /// A `'static` borrow outlives any message, so it can be a reply.
    #[handle]
    fn kind(&self) -> &'static str {
        "account"
    }

    /// A plain method that is not a handler, used by one.
    fn doubled(&self) -> i64 {
        self.balance * 2
    }

    #[handle]
    fn double(&self) -> i64 {
        self.doubled()
    }
}

#[tokio::main]
async fn main() -> Result<(), ergo::Error> {
    let node = Node::builder("handlers@localhost").start().await?;
    let account = node.spawn(Account::default()).await?;

    account.deposit(100).await?;
    assert_eq!(account.balance().await?, 100);
    assert_eq!(account.withdraw(30).await?, Ok(70));
    assert_eq!(
        account.withdraw(1_000).await?,
        Err("insufficient funds: 70 < 1000".to_owned())
    );

    account.note("first".to_owned()).await?;
    account.note("second".to_owned()).await?;
    assert_eq!(account.note_count().await?, 2);
    assert!(account.r#match("sec".to_owned()).await?);
    assert!(!account.r#match("third".to_owned()).await?);

    assert_eq!(account.whoami().await?, account.pid());
    assert_eq!(
        account.stamp("hi".to_owned()).await?,
        format!("{}: hi", account.pid())
    );
    assert_eq!(
        account
            .transfer(vec!["a".to_owned(), "b".to_owned()], Some(5))
            .await?,
        (2, 60, true)
    );
    assert_eq!(account.deposit_later(40, 5).await?, 100);
    assert_eq!(account.double().await?, 200);
    assert_eq!(account.kind().await?, "account");

    // The generated enum is usable directly, and a per-call timeout can be set.
    account.cast(AccountMsg::Deposit { amount: 1 }).await?;
    assert_eq!(
        account.balance().timeout(Duration::from_secs(5)).await?,
        101
    );
    assert_eq!(
        format!("{:?}", AccountMsg::Deposit { amount: 1 }),
        "AccountMsg::Deposit"
    );

    account.close().await?;
    assert_eq!(account.wait().await, ExitReason::Normal);
    assert_eq!(account.balance().await, Err(CallError::NoProc));
    Ok(())
}
