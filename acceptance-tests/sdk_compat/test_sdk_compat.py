"""Databricks' official Python SDK (databricks-sdk) as a client of cmk-sandbox.

Run by the Rust test `tests/sdk_compat.rs`, which starts the sandbox binary on
a free port and sets CMK_SANDBOX_URL and CMK_SANDBOX_SEED. A plain
http://127.0.0.1:PORT host works: the SDK probes /.well-known/databricks-config
(the sandbox answers it) and takes account_id from the Config.
"""

import json
import os
from datetime import timedelta

import pytest
from databricks.sdk import AccountClient
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from databricks.sdk.service.provisioning import (
    CreateAwsKeyInfo,
    KeyUseCase,
    Workspace,
    WorkspaceStatus,
)

URL = os.environ.get("CMK_SANDBOX_URL")
SEED_PATH = os.environ.get("CMK_SANDBOX_SEED")
if not URL or not SEED_PATH:
    raise RuntimeError("CMK_SANDBOX_URL and CMK_SANDBOX_SEED must be set (run through tests/sdk_compat.rs)")
with open(SEED_PATH) as f:
    SEED = json.load(f)

ACCOUNT = SEED["accounts"][0]
ACCOUNT_ID = ACCOUNT["account_id"]
TOKEN = ACCOUNT["tokens"][0]
CLIENT = ACCOUNT["oauth_clients"][0]
OTHER = SEED["accounts"][1]
MS_KEY, ST_KEY, EU_KEY = (k["customer_managed_key_id"] for k in ACCOUNT["customer_managed_keys"])
WS_PLAIN, WS_PREMIUM, WS_STORAGE_SET, WS_BUSY = (w["workspace_id"] for w in ACCOUNT["workspaces"])
ARN = "arn:aws:kms:us-east-1:123456789012:key/9234abcd-12ab-34cd-56ef-1234567890ab"


def account(**auth):
    # The Account API takes OAuth: a service principal (machine-to-machine) by default.
    if not auth:
        auth = {"client_id": CLIENT["client_id"], "client_secret": CLIENT["client_secret"]}
    return AccountClient(config=Config(host=URL, account_id=ACCOUNT_ID, **auth))


@pytest.fixture(scope="module")
def a():
    return account()


def test_key_configuration_lifecycle(a):
    created = a.encryption_keys.create(
        use_cases=[KeyUseCase.MANAGED_SERVICES, KeyUseCase.STORAGE],
        aws_key_info=CreateAwsKeyInfo(key_arn=ARN, key_alias="alias/sdk", reuse_key_for_cluster_volumes=False),
    )
    assert len(created.customer_managed_key_id) == 36
    assert created.account_id == ACCOUNT_ID
    assert created.aws_key_info.key_region == "us-east-1"
    assert created.aws_key_info.reuse_key_for_cluster_volumes is False
    assert created.creation_time > 1_600_000_000_000

    got = a.encryption_keys.get(created.customer_managed_key_id)
    assert got.as_dict() == created.as_dict()
    ids = [k.customer_managed_key_id for k in a.encryption_keys.list()]
    assert created.customer_managed_key_id in ids and MS_KEY in ids

    a.encryption_keys.delete(created.customer_managed_key_id)
    with pytest.raises(NotFound) as e:
        a.encryption_keys.get(created.customer_managed_key_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_oauth_m2m_client(a):
    assert a.config.auth_type == "oauth-m2m"
    assert {w.workspace_id for w in a.workspaces.list()} == {WS_PLAIN, WS_PREMIUM, WS_STORAGE_SET, WS_BUSY}


def test_personal_access_token_refused_by_the_account_api():
    with pytest.raises(Unauthenticated) as e:
        list(account(token=TOKEN).workspaces.list())
    assert "Personal access tokens cannot be used with the Account API" in str(e.value)


def test_workspaces_get_list_update(a):
    ws = a.workspaces.get(WS_PLAIN)
    assert ws.workspace_status == WorkspaceStatus.RUNNING
    assert ws.aws_region == "us-east-1"
    assert len(list(a.workspaces.list())) == 4

    waiter = a.workspaces.update(
        WS_PLAIN,
        Workspace(managed_services_customer_managed_key_id=MS_KEY, storage_customer_managed_key_id=ST_KEY),
        update_mask="managed_services_customer_managed_key_id,storage_customer_managed_key_id",
    )
    assert waiter.response.workspace_status == WorkspaceStatus.PROVISIONING
    done = waiter.result(timeout=timedelta(seconds=60))
    assert done.workspace_status == WorkspaceStatus.RUNNING
    assert done.managed_services_customer_managed_key_id == MS_KEY
    assert done.storage_customer_managed_key_id == ST_KEY


def test_refusal_unauthenticated():
    with pytest.raises(Unauthenticated):
        list(account(token="dapi-not-a-token").workspaces.list())


def test_refusal_other_account():
    # An OAuth token of another account's service principal.
    other = AccountClient(config=Config(host=URL, account_id=OTHER["account_id"],
                                        client_id=OTHER["oauth_clients"][0]["client_id"],
                                        client_secret=OTHER["oauth_clients"][0]["client_secret"]))
    token = other.config.authenticate()["Authorization"].split(" ", 1)[1]
    with pytest.raises(PermissionDenied) as e:
        list(account(token=token).encryption_keys.list())
    assert e.value.error_code == "PERMISSION_DENIED"


def test_refusal_missing_use_cases(a):
    with pytest.raises(BadRequest) as e:
        a.encryption_keys.create(use_cases=None, aws_key_info=CreateAwsKeyInfo(key_arn=ARN))
    assert e.value.error_code == "MALFORMED_REQUEST"
    assert str(e.value) == "Missing required parameters: use_cases"


def test_refusal_invalid_arn(a):
    with pytest.raises(InvalidParameterValue):
        a.encryption_keys.create(use_cases=[KeyUseCase.STORAGE],
                                 aws_key_info=CreateAwsKeyInfo(key_arn="arn:aws:kms:us-east-1:123456789012:alias/x"))


def test_refusal_composite_id(a):
    with pytest.raises(InvalidParameterValue) as e:
        a.encryption_keys.get(f"{ACCOUNT_ID}/{MS_KEY}")
    assert str(e.value) == f"Invalid customerManagedKeyId: {ACCOUNT_ID}/{MS_KEY}"


def test_refusal_not_found(a):
    with pytest.raises(NotFound):
        a.workspaces.get(999)


def test_refusal_delete_in_use(a):
    with pytest.raises(InvalidParameterValue) as e:
        a.encryption_keys.delete(ST_KEY)
    assert "You cannot delete a configuration that is associated with a running workspace" in str(e.value)


@pytest.mark.parametrize(
    "workspace_id,field,key_id,says",
    [
        (WS_PREMIUM, "managed_services_customer_managed_key_id", MS_KEY, "ENTERPRISE pricing tier"),
        (WS_BUSY, "managed_services_customer_managed_key_id", MS_KEY, "classic compute running"),
        (WS_STORAGE_SET, "storage_customer_managed_key_id", EU_KEY, "must be in the workspace's region"),
        (WS_STORAGE_SET, "managed_services_customer_managed_key_id", ST_KEY, "needs the use case MANAGED_SERVICES"),
        (WS_STORAGE_SET, "storage_customer_managed_key_id", MS_KEY, "needs the use case STORAGE"),
        (WS_BUSY, "managed_services_customer_managed_key_id", f"{ACCOUNT_ID}/{MS_KEY}", "Invalid customerManagedKeyId"),
    ],
)
def test_refusal_workspace_update(a, workspace_id, field, key_id, says):
    with pytest.raises(InvalidParameterValue) as e:
        a.workspaces.update(workspace_id, Workspace.from_dict({field: key_id}), update_mask=field)
    assert says in str(e.value)


def test_refusal_storage_key_replaced(a):
    # A key in the right region with STORAGE, so only the "set once" rule refuses.
    created = a.encryption_keys.create(use_cases=[KeyUseCase.STORAGE], aws_key_info=CreateAwsKeyInfo(key_arn=ARN))
    with pytest.raises(InvalidParameterValue) as e:
        a.workspaces.update(
            WS_STORAGE_SET,
            Workspace(storage_customer_managed_key_id=created.customer_managed_key_id),
            update_mask="storage_customer_managed_key_id",
        )
    assert "You cannot replace an existing key configuration for workspace storage." in str(e.value)
