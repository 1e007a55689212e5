//! `conveyor subscriptions list` and `remove` over a [`Store`].

use anyhow::Context as _;
use conveyor::Store;

use crate::admin::UsageError;
use crate::config::SubscriptionsCommand;

pub(crate) async fn run<S: Store>(store: &S, command: SubscriptionsCommand) -> anyhow::Result<()> {
    match command {
        SubscriptionsCommand::List { json } => {
            let subs = store
                .subscriptions()
                .await
                .context("reading the subscriptions")?;
            if json {
                for s in &subs {
                    println!("{}", serde_json::to_string(s)?);
                }
                return Ok(());
            }
            println!(
                "{:<40} {:<24} {:<20} handler",
                "queue", "subscription", "recorded_at"
            );
            for s in &subs {
                println!(
                    "{:<40} {:<24} {:<20} {}",
                    s.queue.to_string(),
                    s.queue.subscription.as_deref().unwrap_or("(default)"),
                    s.recorded_at.format("%Y-%m-%d %H:%M:%S"),
                    s.handler
                );
            }
            Ok(())
        }
        SubscriptionsCommand::Remove { queue } => {
            let queue = queue.queue();
            let purged = store
                .unsubscribe(&queue)
                .await
                .with_context(|| format!("removing the subscription {queue}"))?;
            let Some(purged) = purged else {
                let subs = store
                    .subscriptions()
                    .await
                    .context("reading the subscriptions")?;
                let list: Vec<String> = subs.iter().map(|s| s.queue.to_string()).collect();
                let list = if list.is_empty() {
                    "none".into()
                } else {
                    list.join(", ")
                };
                return Err(UsageError(format!(
                    "subscriptions remove: no subscription {queue} in namespace {}; recorded: {list}",
                    store.namespace()
                ))
                .into());
            };
            println!("removed the subscription {queue} and its {purged} pending events");
            Ok(())
        }
    }
}
