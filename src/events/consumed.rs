//! What Kafka consumers have handled, by event id: Kafka delivers at least
//! once (a consumer that stops before committing its offset is handed the
//! same messages again), so a consumer records each event in the same
//! transaction as its effect and skips events it has recorded.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, sea_query::OnConflict,
};

use super::entity::consumed_event;
use uuid::Uuid;

/// How long a record is kept: far longer than Kafka could redeliver.
pub const RETENTION: TimeDelta = TimeDelta::days(7);

/// Records that `consumer` handles `event_id`; `false` if it already had.
/// Call inside the transaction that applies the event's effect.
pub async fn first_time(
    conn: &impl ConnectionTrait,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, DbErr> {
    let inserted = consumed_event::Entity::insert(consumed_event::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id),
        consumed_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            consumed_event::Column::Consumer,
            consumed_event::Column::EventId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Forgets records older than [`RETENTION`].
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(consumed_event::Entity::delete_many()
        .filter(consumed_event::Column::ConsumedAt.lt(now - RETENTION))
        .exec(db)
        .await?
        .rows_affected)
}
