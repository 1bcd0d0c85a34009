-- The statements one createTask sends (PostgreSQL's statement log), for pgbench.
-- {{…}} marks each value Errand binds as a parameter; bench/pgbench_scripts.py
-- checks the shape against the log of a real request and renders one script per
-- user. UID and GRANT are that user's ids. The task id, which Errand generates,
-- is derived from the user and number so that both INSERTs agree on it.
SELECT "oauth_grants"."id" FROM "oauth_grants" WHERE "oauth_grants"."id" = {{'GRANT'}} AND "oauth_grants"."user_id" = {{'UID'}} AND "oauth_grants"."revoked_at" IS NULL LIMIT {{1}};
BEGIN;
UPDATE "users" SET "task_counter" = "task_counter" + {{1}} WHERE "users"."id" = {{'UID'}} RETURNING "id", "email", "task_counter", "created_at", "password_hash" \gset
INSERT INTO "tasks" ("id", "user_id", "number", "title", "notes", "status", "priority", "due_at", "tags", "created_at", "updated_at", "completed_at", "version") VALUES ({{md5('UID:' || :task_counter)::uuid}}, {{'UID'}}, {{:task_counter}}, {{'Benchmark task'}}, {{NULL}}, {{'open'}}, {{2}}, {{'2026-12-01 09:00:00+00'}}, {{'bench'}}, {{now()}}, {{now()}}, {{NULL}}, {{1}});
INSERT INTO "task_tags" ("task_id", "tag", "user_id") VALUES ({{md5('UID:' || :task_counter)::uuid}}, {{'bench'}}, {{'UID'}});
COMMIT;
