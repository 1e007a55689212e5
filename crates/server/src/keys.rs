//! `conveyor keys parked` and `keys skip` over a [`Store`]: the ordering keys a dead head
//! parked (see [`conveyor::DeadHead::Park`]), and moving one on past its dead head.

use anyhow::Context as _;
use conveyor::{ParkedKey, Store};

use crate::config::KeysCommand;

pub(crate) async fn run<S: Store>(store: &S, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Parked { queue, limit, json } => {
            let queue = queue.queue();
            let parked = store
                .parked_keys(queue.as_ref(), limit as usize)
                .await
                .context("listing the parked keys")?;
            if json {
                for key in &parked {
                    println!("{}", serde_json::to_string(key)?);
                }
            } else {
                print_table(&parked);
            }
            if parked.len() == limit as usize {
                eprintln!("more may follow: give a higher --limit");
            }
            Ok(())
        }
        KeysCommand::Skip { queue, key } => {
            let queue = queue.queue();
            let head = store
                .skip_key(&queue, &key)
                .await
                .with_context(|| format!("skipping key {key:?} of {queue}"))?;
            let Some(head) = head else {
                anyhow::bail!(
                    "key {key:?} of {queue} is not parked in namespace {} \
                     (`conveyor keys parked` lists the parked keys)",
                    store.namespace()
                );
            };
            println!(
                "skipped {head}, the dead head of key {key:?} of {queue}: it stays in the \
                 dead letters and the key's next events run"
            );
            Ok(())
        }
    }
}

fn print_table(parked: &[ParkedKey]) {
    println!(
        "{:<32} {:<32} {:>12} parked_at",
        "queue", "ordering_key", "dead_head"
    );
    for p in parked {
        println!(
            "{:<32} {:<32} {:>12} {}",
            p.queue.to_string(),
            p.ordering_key,
            p.event_id.to_string(),
            p.parked_at.format("%Y-%m-%d %H:%M:%S"),
        );
    }
}
