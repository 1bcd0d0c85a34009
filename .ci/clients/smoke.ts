// The TypeScript client openapi-typescript + openapi-fetch make, used as an
// integrator would: create, list, update, complete, delete, one error. It is
// type-checked (strict) against the generated `schema.d.ts` before it runs,
// so a document whose types do not fit these calls fails here too.
//
// Usage: node smoke.js BASE_URL TOKEN
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Problem"];

const [baseUrl, token] = process.argv.slice(2);
const client = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${token}` },
});

function check(condition: boolean, what: string): void {
  if (!condition) {
    console.error(`typescript client: ${what}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const created = await client.POST("/v1/tasks", {
    body: { title: "Renew passport", tags: ["errands"] },
  });
  check(created.response.status === 201, `createTask answered ${created.response.status}`);
  const task = created.data;
  if (!task) throw new Error("createTask returned no task");
  check(task.title === "Renew passport" && task.status === "open", `created ${JSON.stringify(task)}`);

  const listed = await client.GET("/v1/tasks", { params: { query: { tag: "errands" } } });
  const numbers = (listed.data?.tasks ?? []).map((t) => t.number);
  check(JSON.stringify(numbers) === JSON.stringify([task.number]), `listed ${numbers}`);

  const path = { params: { path: { number: task.number } } };
  const updated = await client.PATCH("/v1/tasks/{number}", {
    ...path,
    body: { title: "Renew passport and ID card" },
  });
  check(updated.data?.title === "Renew passport and ID card", `updated ${JSON.stringify(updated.data)}`);

  const done = await client.POST("/v1/tasks/{number}/complete", path);
  check(done.data?.status === "done", `completeTask gave ${JSON.stringify(done.data)}`);

  const deleted = await client.DELETE("/v1/tasks/{number}", path);
  check(deleted.response.status === 204, `deleteTask answered ${deleted.response.status}`);

  const gone = await client.GET("/v1/tasks/{number}", path);
  check(gone.response.status === 404, `getTask after delete answered ${gone.response.status}`);
  const missing: Problem | undefined = gone.error;
  check(missing?.detail.toLowerCase().includes("task") ?? false, `the 404 says ${JSON.stringify(missing)}`);

  const refused = await client.POST("/v1/tasks", { body: { title: "" } });
  check(refused.response.status === 400, `an empty title answered ${refused.response.status}`);
  const fields = (refused.error?.errors ?? []).map((e) => e.field);
  check(fields.includes("title"), `the 400 names ${fields}`);

  console.log("typescript client: create, list, update, complete, delete, errors: ok");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
