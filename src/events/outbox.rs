//! Writing events: always inside the transaction of the change they
//! describe, so that an event exists exactly when its change does.

use std::sync::LazyLock;

use errand_migrations::OUTBOX_SHARDS;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, Iterable,
    sea_query::{Expr, InsertStatement, IntoIden, Query},
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Event, entity::outbox};

/// Rung after a commit that wrote events, so that this process's relay
/// publishes them at once. Other processes hear of it through PostgreSQL's
/// `NOTIFY errand_outbox`, sent by [`super::relay::announce`], or their polling.
static WRITTEN: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Appends `event` to the outbox on `conn`, which must be the transaction
/// (or single statement) that makes the change. Finish the transaction with
/// [`commit`], which wakes the relay.
pub async fn append(conn: &impl ConnectionTrait, event: &Event) -> Result<(), DbErr> {
    outbox::Entity::insert(row(event))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Appends several events in one statement, in order.
pub async fn append_all(conn: &impl ConnectionTrait, events: &[Event]) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    outbox::Entity::insert_many(events.iter().map(row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// `event`'s outbox row as `INSERT … SELECT … FROM from`, for a statement
/// that makes a change and writes its event at once (a data-modifying `WITH`
/// whose clause `from` yields the row the change made): no row there, no
/// event. `payload` is the payload column's expression, for an event whose
/// rendering SQL completes from `from` (the rendered payload is `$1` in it).
/// Built from the same row as [`append`], column for column.
pub fn insert_selecting(
    event: &Event,
    from: impl IntoIden + Clone,
    payload: &'static str,
) -> Result<InsertStatement, DbErr> {
    let row = row(event);
    let mut select = Query::select();
    let mut columns = Vec::new();
    for column in outbox::Column::iter() {
        // The sequence number is the database's to choose.
        let Some(value) = row.get(column).into_value() else {
            continue;
        };
        columns.push(column);
        select.expr(if matches!(column, outbox::Column::Payload) {
            Expr::cust_with_values(payload, [value])
        } else {
            Expr::val(value)
        });
    }
    select.from(from);
    let mut insert = Query::insert();
    insert
        .into_table(outbox::Entity)
        .columns(columns)
        .select_from(select)
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(insert)
}

fn row(event: &Event) -> outbox::ActiveModel {
    outbox::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        id: Set(event.id),
        shard: Set(shard_of(event.key)),
        message_key: Set(event.key.to_string()),
        payload: Set(event.payload.clone()),
        created_at: Set(event.time),
    }
}

/// Commits a transaction that appended events and tells this process's
/// relay, so that it publishes them at once (inside a shared transaction:
/// once that commits). The one way to finish such a transaction.
pub async fn commit(txn: DatabaseTransaction) -> Result<(), DbErr> {
    txn.commit().await?;
    committed();
    Ok(())
}

/// Runs one statement that writes its events itself (an [`insert_selecting`]
/// clause) and answers the row it yields, telling the relay as [`commit`]
/// does: the statement commits by itself, or with the transaction it joins.
pub async fn query_one_committing(
    conn: &impl ConnectionTrait,
    statement: sea_orm::Statement,
) -> Result<Option<sea_orm::QueryResult>, DbErr> {
    let row = conn.query_one_raw(statement).await?;
    committed();
    Ok(row)
}

/// Tells this process's relay that events were committed (at once, or when
/// the shared transaction this runs inside commits).
fn committed() {
    crate::db::after_commit(|| WRITTEN.notify_waiters());
}

/// Resolves at the next [`committed`] call in this process.
pub(super) fn written() -> tokio::sync::futures::Notified<'static> {
    WRITTEN.notified()
}

/// The shard of a message key: every event with one key lands in one shard,
/// so one relay at a time publishes them, in order. Folds all 128 bits (the
/// leading bits of a v7 id are a timestamp, the rest random) and must never
/// change: stored rows keep the shard they were written with.
pub fn shard_of(key: Uuid) -> i16 {
    let bits = key.as_u128();
    let folded = (bits >> 64) as u64 ^ bits as u64;
    (folded % OUTBOX_SHARDS as u64) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        let key = Uuid::parse_str("01936f6e-0000-7000-8000-000000000011").unwrap();
        assert_eq!(shard_of(key), shard_of(key));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let shard = shard_of(Uuid::now_v7());
            assert!((0..OUTBOX_SHARDS).contains(&shard));
            seen.insert(shard);
        }
        assert_eq!(
            seen.len(),
            OUTBOX_SHARDS as usize,
            "keys spread over every shard"
        );
    }
}
