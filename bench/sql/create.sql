-- The statement one createTask sends on PostgreSQL (PostgreSQL's statement log),
-- for pgbench. {{…}} marks each value Errand binds as a parameter;
-- bench/pgbench_scripts.py checks the shape against the log of a real request and
-- renders one script per user (UID is that user's id). The task id, which Errand
-- generates, comes from pgbench's random numbers (\set lines are pgbench's own).
-- The last clause writes the task.created event to the outbox: its payload is
-- Errand's CloudEvent split around the task number (about 600 characters).
\set n random(1, 9000000000000000000)
WITH next AS (UPDATE users SET task_counter = task_counter + 1 WHERE id = {{'UID'::uuid}} RETURNING task_counter), task AS (INSERT INTO tasks (id, user_id, number, title, notes, status, priority, due_at, tags, created_at, updated_at, completed_at, version) SELECT {{md5('UID:' || :n)::uuid}}, {{'UID'::uuid}}, next.task_counter, {{'Benchmark task'}}, {{NULL}}, {{'open'}}, {{2}}, {{'2026-12-01 09:00:00+00'::timestamptz}}, {{'bench'}}, {{now()}}, {{now()}}, NULL, 1 FROM next RETURNING number), tag AS (INSERT INTO task_tags (task_id, tag, user_id) SELECT {{md5('UID:' || :n)::uuid}}, name, {{'UID'::uuid}} FROM task, unnest(string_to_array({{'bench'}}, ' ')) AS name), event AS (INSERT INTO outbox (id, shard, message_key, payload, created_at) SELECT {{md5('UID:event:' || :n)::uuid}}, {{(:n % 16)::smallint}}, {{md5('UID:' || :n)}}, {{repeat('x', 300)}} || task.number || {{repeat('y', 300)}}, {{now()}} FROM task) SELECT number FROM task;
