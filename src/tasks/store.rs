//! Task queries. Every change runs in one transaction; nothing here knows HTTP.
//!
//! A task's tags are stored twice, written together: on the task row (`tags`,
//! space-separated), so that reading a page of tasks is one query, and one row
//! per tag in `task_tags`, indexed for the `tag` filter.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, FromQueryResult, Iterable, ModelTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QueryResult, QuerySelect, Select, Statement,
    sea_query::{
        Alias, CommonTableExpression, Expr, ExprTrait, Func, LikeExpr, NullOrdering, Order,
        PostgresQueryBuilder, Query, SubQueryStatement, WithClause, WithQuery,
    },
};
use uuid::Uuid;

use super::{
    agenda::{AgendaWindow, Due, SECTION_LIMIT, Sections},
    domain::{NewTask, Priority, Tags, Task, TaskNumber, TaskPatch, TaskStatus},
    entity::{task, task_tag},
    listing::{ListQuery, Position, SortKey, StatusFilter},
};
use crate::{
    db,
    events::{Event, EventType, Source, outbox},
    patch::Change,
    reminders::store as reminder_store,
    timestamp::Timestamp,
    users,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the user the access token names does not exist")]
    UnknownUser,
    #[error("stored task {id} cannot be read: {why}")]
    Corrupt { id: Uuid, why: String },
    #[error("database error")]
    Database(#[from] DbErr),
    #[error("could not render an event")]
    Event(#[from] serde_json::Error),
    #[error(transparent)]
    Reminders(#[from] reminder_store::StoreError),
}

type Result<T> = std::result::Result<T, StoreError>;

/// Creates a task with the user's next number (see
/// `users::store::next_task_number` for why numbers never collide or skip).
pub async fn create(
    db: &DatabaseConnection,
    source: &Source,
    user_id: Uuid,
    new: NewTask,
) -> Result<Task> {
    let now = Timestamp::now();
    let mut row = task::Model {
        id: Uuid::now_v7(),
        user_id,
        number: 0,
        title: new.title.as_str().to_owned(),
        notes: new.notes.map(|n| n.as_str().to_owned()),
        status: TaskStatus::Open.as_str().to_owned(),
        priority: new.priority.rank(),
        due_at: new.due_at.map(|t| t.as_utc()),
        tags: tags_column(&new.tags),
        created_at: now.as_utc(),
        updated_at: now.as_utc(),
        completed_at: None,
        version: 1,
    };
    let created = match db.get_database_backend() {
        DbBackend::Postgres => create_in_one_statement(db, source, row).await?,
        _ => {
            let txn = db::begin_write(db).await?;
            row.number = users::store::next_task_number(&txn, user_id)
                .await?
                .ok_or(StoreError::UnknownUser)?;
            task::Entity::insert(task::ActiveModel::from(row.clone()))
                .exec_without_returning(&txn)
                .await?;
            insert_tags(&txn, row.id, user_id, &new.tags).await?;
            let created = to_task(row)?;
            outbox::append(
                &txn,
                &task_event(source, EventType::TaskCreated, user_id, &created)?,
            )
            .await?;
            outbox::commit(txn).await?;
            created
        }
    };
    Ok(created)
}

fn task_event(source: &Source, kind: EventType, user_id: Uuid, task: &Task) -> Result<Event> {
    Ok(super::events::task_event(source, kind, user_id, task)?)
}

/// On PostgreSQL a create is one statement instead of a transaction of
/// five (BEGIN, the counter, the task, its tags, its event, COMMIT): the
/// same writes as data-modifying `WITH` clauses, atomic like a transaction,
/// in one round trip; the counter's increment locks the user's row until
/// the statement ends, as in the transaction. Each clause is built by the
/// query builder from the same row and entity columns as the transaction,
/// so a new column reaches both. The number is the database's to choose, so
/// the `task.created` payload is rendered with a stand-in number and SQL
/// sets `data.task.number` in the JSON (`jsonb_set`) from the inserted row.
/// (About 60% of the transaction's CPU per create: bench/README.md.)
async fn create_in_one_statement(
    db: &DatabaseConnection,
    source: &Source,
    mut row: task::Model,
) -> Result<Task> {
    let (next, created, tagged, event, name) = (
        Alias::new("next"),
        Alias::new("created"),
        Alias::new("tagged"),
        Alias::new("event"),
        Alias::new("name"),
    );
    let (bump, counter) = users::store::next_task_number_statement(row.user_id);

    let mut values = Query::select();
    for column in task::Column::iter() {
        values.expr(if matches!(column, task::Column::Number) {
            Expr::col((next.clone(), counter))
        } else {
            Expr::val(row.get(column))
        });
    }
    values.from(next.clone());
    let mut insert_task = Query::insert();
    insert_task
        .into_table(task::Entity)
        .columns(task::Column::iter())
        .select_from(values)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .returning_col(task::Column::Number);

    let mut tag_rows = Query::select();
    tag_rows
        .expr(Expr::val(row.id))
        .expr(Expr::col(name.clone()))
        .expr(Expr::val(row.user_id))
        .from(created.clone())
        .from_function(
            Func::cust("unnest").arg(
                Func::cust("string_to_array")
                    .arg(Expr::val(row.tags.clone()))
                    .arg(" "),
            ),
            name,
        );
    let mut insert_tags = Query::insert();
    insert_tags
        .into_table(task_tag::Entity)
        .columns([
            task_tag::Column::TaskId,
            task_tag::Column::Tag,
            task_tag::Column::UserId,
        ])
        .select_from(tag_rows)
        .map_err(|e| DbErr::Custom(e.to_string()))?;

    // Any number will do as the stand-in: SQL replaces it.
    row.number = 1;
    let draft = to_task(row.clone())?;
    let insert_event = outbox::insert_selecting(
        &task_event(source, EventType::TaskCreated, row.user_id, &draft)?,
        created.clone(),
        r#"jsonb_set(CAST($1 AS jsonb), '{data,task,number}', to_jsonb("created"."number"))::text"#,
    )?;

    let mut select_number = Query::select();
    select_number
        .column((created.clone(), task::Column::Number))
        .from(created.clone());
    // Assembled by moving, never `.to_owned()`: each copy of the tree (the
    // rendered event in it) showed as a tenth of a create's CPU.
    let mut with = WithClause::new();
    for (name, query) in [
        (next, SubQueryStatement::from(bump)),
        (created, insert_task.into()),
        (tagged, insert_tags.into()),
        (event, insert_event.into()),
    ] {
        let mut cte = CommonTableExpression::new();
        cte.table_name(name).query(query);
        with.cte(cte);
    }
    let mut statement = WithQuery::new();
    statement.with_clause(with).query(select_number);
    let (sql, values) = statement.build(PostgresQueryBuilder);
    // Through `db::conn`: inside an idempotent request it joins the
    // transaction the request's key is recorded in.
    let inserted = outbox::query_one_committing(
        &db::conn(db),
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values),
    )
    .await?
    .ok_or(StoreError::UnknownUser)?;
    row.number = inserted.try_get("", sea_orm::IdenStatic::as_str(&task::Column::Number))?;
    to_task(row)
}

fn tags_column(tags: &Tags) -> String {
    tags.to_strings().join(" ")
}

async fn replace_tags(
    txn: &impl ConnectionTrait,
    task_id: Uuid,
    user_id: Uuid,
    tags: &Tags,
) -> Result<()> {
    task_tag::Entity::delete_many()
        .filter(task_tag::Column::TaskId.eq(task_id))
        .exec(txn)
        .await?;
    insert_tags(txn, task_id, user_id, tags).await
}

async fn insert_tags(
    txn: &impl ConnectionTrait,
    task_id: Uuid,
    user_id: Uuid,
    tags: &Tags,
) -> Result<()> {
    let rows: Vec<task_tag::ActiveModel> = tags
        .iter()
        .map(|tag| task_tag::ActiveModel {
            task_id: Set(task_id),
            tag: Set(tag.as_str().to_owned()),
            user_id: Set(user_id),
        })
        .collect();
    if !rows.is_empty() {
        task_tag::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// A task row decoded by column position. sea-orm's own decoding looks each
/// value up by name (formatting and hashing the name for every value of
/// every row), a tenth of a listing's CPU; `Entity::find` selects the
/// columns in `task::Column` order, the order read here (a test checks it).
struct TaskRow(task::Model);

impl FromQueryResult for TaskRow {
    fn from_query_result(row: &QueryResult, _prefix: &str) -> std::result::Result<Self, DbErr> {
        Ok(Self(task::Model {
            id: row.try_get_by_index(0)?,
            user_id: row.try_get_by_index(1)?,
            number: row.try_get_by_index(2)?,
            title: row.try_get_by_index(3)?,
            notes: row.try_get_by_index(4)?,
            status: row.try_get_by_index(5)?,
            priority: row.try_get_by_index(6)?,
            due_at: row.try_get_by_index(7)?,
            tags: row.try_get_by_index(8)?,
            created_at: row.try_get_by_index(9)?,
            updated_at: row.try_get_by_index(10)?,
            completed_at: row.try_get_by_index(11)?,
            version: row.try_get_by_index(12)?,
        }))
    }
}

fn owned_by(user_id: Uuid) -> Select<task::Entity> {
    task::Entity::find().filter(task::Column::UserId.eq(user_id))
}

fn find_row(user_id: Uuid, number: TaskNumber) -> Select<task::Entity> {
    owned_by(user_id).filter(task::Column::Number.eq(number.get()))
}

/// One of the user's tasks, or `None` if they have no task with that number.
pub async fn get(
    db: &DatabaseConnection,
    user_id: Uuid,
    number: TaskNumber,
) -> Result<Option<Task>> {
    find_row(user_id, number)
        .into_model::<TaskRow>()
        .one(db)
        .await?
        .map(|row| to_task(row.0))
        .transpose()
}

/// A task by its id, in the caller's transaction, as a reminder names it:
/// its number, title and due time. `None` if it is gone.
pub async fn brief(
    conn: &impl ConnectionTrait,
    task_id: Uuid,
) -> Result<Option<crate::reminders::events::TaskBrief>> {
    Ok(task::Entity::find_by_id(task_id)
        .one(conn)
        .await?
        .map(|row| crate::reminders::events::TaskBrief {
            number: row.number,
            title: row.title,
            due_at: row.due_at.map(|at| Timestamp::from_utc(at).into()),
            tags: row.tags.split_whitespace().map(str::to_owned).collect(),
        }))
}

/// One of the user's tasks, locked until `txn` ends: for a change to
/// something that belongs to the task (a reminder), made in the same
/// transaction.
pub async fn lock(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    number: TaskNumber,
) -> Result<Option<Task>> {
    find_row(user_id, number)
        .lock_exclusive()
        .into_model::<TaskRow>()
        .one(txn)
        .await?
        .map(|row| to_task(row.0))
        .transpose()
}

/// Up to `limit` tasks matching `query`, starting after `after`.
pub async fn list(
    db: &DatabaseConnection,
    user_id: Uuid,
    query: &ListQuery,
    after: Option<&Position>,
    limit: u64,
) -> Result<Vec<Task>> {
    let mut select = owned_by(user_id);
    select = match query.status {
        StatusFilter::Open => select.filter(task::Column::Status.eq(TaskStatus::Open.as_str())),
        StatusFilter::Done => select.filter(task::Column::Status.eq(TaskStatus::Done.as_str())),
        StatusFilter::All => select,
    };
    if let Some(tag) = &query.tag {
        select = select.filter(
            task::Column::Id.in_subquery(
                Query::select()
                    .column(task_tag::Column::TaskId)
                    .from(task_tag::Entity)
                    .and_where(task_tag::Column::UserId.eq(user_id))
                    .and_where(task_tag::Column::Tag.eq(tag.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(text) = &query.text {
        let pattern = format!("%{}%", escape_like(&text.as_str().to_lowercase()));
        let matches = |column: task::Column| {
            Expr::expr(Func::lower(Expr::col(column)))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        select = select.filter(
            Condition::any()
                .add(matches(task::Column::Title))
                .add(matches(task::Column::Notes)),
        );
    }
    if let Some(before) = query.due_before {
        select = select.filter(task::Column::DueAt.lt(before.as_utc()));
    }
    if let Some(after) = query.due_after {
        select = select.filter(task::Column::DueAt.gte(after.as_utc()));
    }

    let keys = sort_keys(query.sort, after);
    if after.is_some() {
        select = select.filter(after_condition(&keys));
    }
    for key in &keys {
        let order = if key.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        select = if key.nullable {
            select.order_by_with_nulls(key.column, order, NullOrdering::Last)
        } else {
            select.order_by(key.column, order)
        };
    }
    let rows = select.limit(limit).into_model::<TaskRow>().all(db).await?;
    rows.into_iter().map(|row| to_task(row.0)).collect()
}

/// One column of a listing's order, with the value the previous page ended on.
struct SortColumn {
    column: task::Column,
    descending: bool,
    /// Nullable columns sort their NULLs last.
    nullable: bool,
    value: Option<sea_orm::Value>,
}

fn sort_keys(sort: SortKey, after: Option<&Position>) -> Vec<SortColumn> {
    let due = SortColumn {
        column: task::Column::DueAt,
        descending: false,
        nullable: true,
        value: after
            .and_then(|p| p.due_at)
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0).map(sea_orm::Value::from)),
    };
    let number = |descending| SortColumn {
        column: task::Column::Number,
        descending,
        nullable: false,
        value: after.map(|p| p.number.into()),
    };
    match sort {
        SortKey::Due => vec![due, number(false)],
        SortKey::Created => vec![number(true)],
        SortKey::Priority => vec![
            SortColumn {
                column: task::Column::Priority,
                descending: true,
                nullable: false,
                value: after.map(|p| p.priority.into()),
            },
            due,
            number(false),
        ],
    }
}

/// Rows strictly after the position in the order given by `keys`:
/// `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR …`, where NULL sorts after every
/// value.
fn after_condition(keys: &[SortColumn]) -> Condition {
    let mut any = Condition::any();
    let mut disjuncts = 0;
    for (i, key) in keys.iter().enumerate() {
        let Some(value) = &key.value else {
            // Nothing sorts after NULL (NULLs are last): no row is strictly
            // after the position on this column.
            continue;
        };
        let mut all = Condition::all();
        for earlier in &keys[..i] {
            all = all.add(match &earlier.value {
                Some(v) => Expr::col(earlier.column).eq(v.clone()),
                None => Expr::col(earlier.column).is_null(),
            });
        }
        let beyond = if key.descending {
            Expr::col(key.column).lt(value.clone())
        } else {
            Expr::col(key.column).gt(value.clone())
        };
        all = all.add(if key.nullable {
            Condition::any()
                .add(beyond)
                .add(Expr::col(key.column).is_null())
        } else {
            Condition::all().add(beyond)
        });
        any = any.add(all);
        disjuncts += 1;
    }
    if disjuncts == 0 {
        // Only reachable for a position whose every key is NULL, which no
        // task has (numbers are never NULL); still, match nothing.
        return Condition::all().add(Expr::val(1).eq(0));
    }
    any
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The user's agenda at `window`: open tasks overdue, due today and due in
/// the upcoming days.
pub async fn agenda(
    db: &DatabaseConnection,
    user_id: Uuid,
    window: &AgendaWindow,
) -> Result<Sections> {
    Ok(Sections {
        overdue: open_due_between(db, user_id, None, window.now).await?,
        due_today: open_due_between(db, user_id, Some(window.now), window.end_of_today).await?,
        upcoming: open_due_between(
            db,
            user_id,
            Some(window.end_of_today),
            window.end_of_upcoming,
        )
        .await?,
    })
}

/// Open tasks due in `[from, until)` (or before `until` when `from` is
/// `None`), the soonest [`SECTION_LIMIT`] with the total count.
async fn open_due_between(
    db: &DatabaseConnection,
    user_id: Uuid,
    from: Option<Timestamp>,
    until: Timestamp,
) -> Result<Due> {
    let limit = SECTION_LIMIT;
    let mut select = owned_by(user_id)
        .filter(task::Column::Status.eq(TaskStatus::Open.as_str()))
        .filter(task::Column::DueAt.lt(until.as_utc()));
    if let Some(from) = from {
        select = select.filter(task::Column::DueAt.gte(from.as_utc()));
    }
    let rows = select
        .clone()
        .order_by_asc(task::Column::DueAt)
        .order_by_asc(task::Column::Number)
        .limit(limit)
        .into_model::<TaskRow>()
        .all(db)
        .await?;
    let total = if (rows.len() as u64) < limit {
        rows.len() as u64
    } else {
        select.count(db).await?
    };
    let tasks = rows
        .into_iter()
        .map(|row| to_task(row.0))
        .collect::<Result<_>>()?;
    Ok(Due { tasks, total })
}

/// Applies a partial update. Returns `None` for an unknown task. A patch that
/// changes nothing leaves the version alone.
pub async fn update(
    db: &DatabaseConnection,
    source: &Source,
    user_id: Uuid,
    number: TaskNumber,
    patch: TaskPatch,
) -> Result<Option<Task>> {
    let txn = db::begin_write(db).await?;
    let Some(row) = find_row(user_id, number).lock_exclusive().one(&txn).await? else {
        return Ok(None);
    };
    let mut next = row.clone();
    if let Some(title) = patch.title {
        next.title = title.as_str().to_owned();
    }
    match patch.notes {
        Change::Keep => {}
        Change::Clear => next.notes = None,
        Change::Set(notes) => next.notes = Some(notes.as_str().to_owned()),
    }
    match patch.due_at {
        Change::Keep => {}
        Change::Clear => next.due_at = None,
        Change::Set(at) => next.due_at = Some(at.as_utc()),
    }
    if let Some(priority) = patch.priority {
        next.priority = priority.rank();
    }
    let new_tags = patch.tags.filter(|tags| tags_column(tags) != row.tags);
    if let Some(tags) = &new_tags {
        next.tags = tags_column(tags);
    }
    if next == row {
        txn.commit().await?;
        return to_task(row).map(Some);
    }
    next.version = row.version + 1;
    next.updated_at = Timestamp::now().as_utc();
    save(&txn, &row, &next).await?;
    if let Some(tags) = new_tags {
        replace_tags(&txn, row.id, user_id, &tags).await?;
    }
    if next.due_at != row.due_at {
        reminder_store::follow_due(&txn, source, row.id, next.due_at).await?;
    }
    let updated = to_task(next)?;
    outbox::append(
        &txn,
        &task_event(source, EventType::TaskUpdated, user_id, &updated)?,
    )
    .await?;
    outbox::commit(txn).await?;
    Ok(Some(updated))
}

/// Marks a task open or done. Setting the status it already has changes
/// nothing, so repeating the call is safe.
pub async fn set_status(
    db: &DatabaseConnection,
    source: &Source,
    user_id: Uuid,
    number: TaskNumber,
    status: TaskStatus,
) -> Result<Option<Task>> {
    let txn = db::begin_write(db).await?;
    let Some(row) = find_row(user_id, number).lock_exclusive().one(&txn).await? else {
        return Ok(None);
    };
    if row.status == status.as_str() {
        txn.commit().await?;
        return to_task(row).map(Some);
    }
    let now = Timestamp::now().as_utc();
    let mut next = row.clone();
    next.status = status.as_str().to_owned();
    next.completed_at = match status {
        TaskStatus::Done => Some(now),
        TaskStatus::Open => None,
    };
    next.version = row.version + 1;
    next.updated_at = now;
    save(&txn, &row, &next).await?;
    let changed = to_task(next)?;
    let kind = match status {
        TaskStatus::Done => EventType::TaskCompleted,
        TaskStatus::Open => EventType::TaskReopened,
    };
    outbox::append(&txn, &task_event(source, kind, user_id, &changed)?).await?;
    if status == TaskStatus::Done {
        // Nothing is left to remind about.
        reminder_store::cancel_for_task(&txn, source, changed.id).await?;
    }
    outbox::commit(txn).await?;
    Ok(Some(changed))
}

/// Writes the columns that differ between `before` and `after`.
async fn save(txn: &impl ConnectionTrait, before: &task::Model, after: &task::Model) -> Result<()> {
    let mut active = task::ActiveModel::from(before.clone());
    active.title = Set(after.title.clone());
    active.notes = Set(after.notes.clone());
    active.status = Set(after.status.clone());
    active.priority = Set(after.priority);
    active.due_at = Set(after.due_at);
    active.tags = Set(after.tags.clone());
    active.updated_at = Set(after.updated_at);
    active.completed_at = Set(after.completed_at);
    active.version = Set(after.version);
    active.update(txn).await?;
    Ok(())
}

/// Deletes a task; `false` if the user has no task with that number. The
/// `task.deleted` event carries the task as it was.
pub async fn delete(
    db: &DatabaseConnection,
    source: &Source,
    user_id: Uuid,
    number: TaskNumber,
) -> Result<bool> {
    let txn = db::begin_write(db).await?;
    let Some(row) = find_row(user_id, number).lock_exclusive().one(&txn).await? else {
        return Ok(false);
    };
    let id = row.id;
    let deleted = to_task(row)?;
    reminder_store::cancel_for_task(&txn, source, id).await?;
    outbox::append(
        &txn,
        &task_event(source, EventType::TaskDeleted, user_id, &deleted)?,
    )
    .await?;
    task::Entity::delete_by_id(id).exec(&txn).await?;
    outbox::commit(txn).await?;
    Ok(true)
}

fn to_task(row: task::Model) -> Result<Task> {
    let corrupt = |why: String| StoreError::Corrupt { id: row.id, why };
    let status = TaskStatus::parse_param(&row.status).map_err(corrupt)?;
    let priority = Priority::from_rank(row.priority)
        .ok_or_else(|| corrupt(format!("priority rank {}", row.priority)))?;
    let number =
        TaskNumber::new(row.number).ok_or_else(|| corrupt(format!("number {}", row.number)))?;
    Ok(Task {
        id: row.id,
        number,
        title: row.title,
        notes: row.notes,
        status,
        priority,
        due_at: row.due_at.map(Timestamp::from_utc),
        tags: row.tags.split_whitespace().map(str::to_owned).collect(),
        created_at: Timestamp::from_utc(row.created_at),
        updated_at: Timestamp::from_utc(row.updated_at),
        completed_at: row.completed_at.map(Timestamp::from_utc),
        version: row.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TaskRow` reads columns by position, in the order `Entity::find`
    /// selects them.
    #[test]
    fn task_rows_are_read_in_column_order() {
        use sea_orm::{Iden, Iterable};
        let columns: Vec<String> = task::Column::iter().map(|c| c.to_string()).collect();
        assert_eq!(
            columns,
            [
                "id",
                "user_id",
                "number",
                "title",
                "notes",
                "status",
                "priority",
                "due_at",
                "tags",
                "created_at",
                "updated_at",
                "completed_at",
                "version"
            ]
        );
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("100%_done\\"), "100\\%\\_done\\\\");
    }
}
