"""Databricks' official Python SDK performs the operations the provider's
client performs, against cmk-sandbox; the sandbox records each request
(method, path, query, body keys, auth scheme) and this script prints them,
per operation, as JSON for tests/conformance.rs to compare with the
provider's own requests. It also prints every response shape the SDK can
produce for the models the client decodes (all fields set, and enum values
the client does not know).

Input: CMK_CONFORMANCE, a JSON object (url, admin, account_id, client_id,
client_secret, workspace_id, deployment, arn, ms_key, page_size).
"""

import dataclasses
import json
import os
import urllib.request

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.provisioning import CreateAwsKeyInfo, KeyUseCase, Workspace

P = json.loads(os.environ["CMK_CONFORMANCE"])
URL = P["url"]
WS_HOST = f"{URL}/_ws/{P['deployment']}"


def admin(method, path):
    req = urllib.request.Request(URL + path, method=method, headers={"Authorization": "Bearer " + P["admin"]})
    with urllib.request.urlopen(req) as r:
        body = r.read()
        return json.loads(body) if body else None


def recorded():
    return admin("GET", "/_sandbox/requests")


ops = {}


def op(name, f):
    admin("DELETE", "/_sandbox/requests")
    result = f()
    ops[name] = recorded()
    return result


creds = {"client_id": P["client_id"], "client_secret": P["client_secret"]}
a = op("account_client", lambda: AccountClient(config=Config(host=URL, account_id=P["account_id"], **creds)))
w = op("workspace_client", lambda: WorkspaceClient(config=Config(host=WS_HOST, **creds)))

k = op(
    "create_key",
    lambda: a.encryption_keys.create(
        use_cases=[KeyUseCase.MANAGED_SERVICES, KeyUseCase.STORAGE],
        aws_key_info=CreateAwsKeyInfo(key_arn=P["arn"], key_alias="alias/conformance", reuse_key_for_cluster_volumes=False),
    ),
)
kid = k.customer_managed_key_id
op("get_key", lambda: a.encryption_keys.get(kid))
op("list_keys", lambda: list(a.encryption_keys.list()))
op("delete_key", lambda: a.encryption_keys.delete(kid))
op("get_workspace", lambda: a.workspaces.get(P["workspace_id"]))
op("list_workspaces", lambda: list(a.workspaces.list()))
op(
    "update_workspace",
    lambda: a.workspaces.update(
        P["workspace_id"],
        Workspace(managed_services_customer_managed_key_id=P["ms_key"]),
        update_mask="managed_services_customer_managed_key_id",
    ).response,
)
dashboards = op("list_dashboards", lambda: list(w.lakeview.list(page_size=P["page_size"])))
assert len(dashboards) > P["page_size"], "the dashboards list must span pages"


def sample(cls, depth=0):
    """An instance of an SDK dataclass with every field set."""
    import typing

    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        values[f.name] = sample_value(hints.get(f.name, f.type), f.name, depth)
    return cls(**values)


def sample_value(t, name, depth):
    import enum
    import typing

    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Union:
        t = [x for x in args if x is not type(None)][0]
        origin, args = typing.get_origin(t), typing.get_args(t)
    if isinstance(t, str):
        return None
    if origin in (list, typing.List):
        return [sample_value(args[0], name, depth)]
    if origin in (dict, typing.Dict):
        return {"k": "v"}
    if t is bool:
        return True
    if t is int:
        return 1234567890123 if "time" in name else 4242
    if t is float:
        return 1.5
    if t is str:
        return f"{name}-value"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return list(t)[0]
    if dataclasses.is_dataclass(t) and depth < 3:
        return sample(t, depth + 1)
    return None


from databricks.sdk.service.dashboards import Dashboard  # noqa: E402
from databricks.sdk.service.provisioning import CustomerManagedKey  # noqa: E402

ws = sample(Workspace).as_dict()
ws["workspace_id"] = 4242
key = sample(CustomerManagedKey).as_dict()
shapes = {
    "workspace_full": ws,
    "workspace_unknown_enums": {
        **ws,
        "pricing_tier": "PLATINUM_2030",
        "compute_mode": "QUANTUM",
        "storage_mode": "SOMEWHERE_NEW",
        "workspace_status": "HIBERNATING",
    },
    "key_full": key,
    "key_unknown_use_case": {**key, "use_cases": ["MANAGED_SERVICES", "FUTURE_USE_CASE"]},
    "dashboard_page": {"dashboards": [d.as_dict() for d in dashboards[:2]], "next_page_token": "abc"},
    "dashboard_full": sample(Dashboard).as_dict(),
    "dashboard_unknown_state": {**sample(Dashboard).as_dict(), "lifecycle_state": "ARCHIVED_IN_2030"},
}
print(json.dumps({"ops": ops, "shapes": shapes}))
