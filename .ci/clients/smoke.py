"""The Python client openapi-python-client generates, with its defaults, used
as an integrator would: create, list, update, complete, delete, one error.

Usage: python smoke.py PACKAGE_DIR BASE_URL TOKEN
(PACKAGE_DIR holds the generated `errand_client` package.)
"""

import sys

sys.path.insert(0, sys.argv[1])
base_url, token = sys.argv[2], sys.argv[3]

from errand_client import AuthenticatedClient  # noqa: E402
from errand_client.api.tasks import (  # noqa: E402
    complete_task,
    create_task,
    delete_task,
    get_task,
    list_tasks,
    update_task,
)
from errand_client.models import NewTask, Problem, Task, TaskChanges, TaskPage  # noqa: E402


def check(condition, what):
    if not condition:
        raise SystemExit(f"python client: {what}")


client = AuthenticatedClient(base_url=base_url, token=token)

created = create_task.sync_detailed(
    client=client, body=NewTask(title="Renew passport", tags=["errands"])
)
check(created.status_code == 201, f"createTask answered {created.status_code}: {created.content!r}")
task = created.parsed
check(isinstance(task, Task), f"createTask parsed as {type(task).__name__}")
check(task.title == "Renew passport" and task.status == "open", f"created {task!r}")

page = list_tasks.sync(client=client, tag="errands")
check(isinstance(page, TaskPage), f"listTasks parsed as {type(page).__name__}")
check([t.number for t in page.tasks] == [task.number], f"listed {page.tasks!r}")

updated = update_task.sync(
    task.number, client=client, body=TaskChanges(title="Renew passport and ID card")
)
check(isinstance(updated, Task), f"updateTask parsed as {type(updated).__name__}")
check(updated.title == "Renew passport and ID card", f"updated {updated!r}")

done = complete_task.sync(task.number, client=client)
check(isinstance(done, Task) and done.status == "done", f"completeTask gave {done!r}")

deleted = delete_task.sync_detailed(task.number, client=client)
check(deleted.status_code == 204, f"deleteTask answered {deleted.status_code}")

gone = get_task.sync_detailed(task.number, client=client)
check(gone.status_code == 404, f"getTask after delete answered {gone.status_code}")
check(isinstance(gone.parsed, Problem), f"the 404 parsed as {type(gone.parsed).__name__}")
check("task" in gone.parsed.detail.lower(), f"the problem says {gone.parsed.detail!r}")

refused = create_task.sync_detailed(client=client, body=NewTask(title=""))
check(refused.status_code == 400, f"an empty title answered {refused.status_code}")
check(isinstance(refused.parsed, Problem), f"the 400 parsed as {type(refused.parsed).__name__}")
check(
    any(e.field == "title" for e in refused.parsed.errors),
    f"the 400 names {[e.field for e in refused.parsed.errors]}",
)
print(f"python client against {sys.argv[1]}: create, list, update, complete, delete, errors: ok")
