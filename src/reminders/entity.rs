//! The `reminders` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub task_id: Uuid,
    pub task_number: i64,
    pub remind_at: DateTimeUtc,
    pub before_due_seconds: Option<i64>,
    pub status: String,
    pub late: bool,
    pub created_at: DateTimeUtc,
    pub fired_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
