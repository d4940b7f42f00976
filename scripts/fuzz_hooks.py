"""What schemathesis cannot read from the OpenAPI document, taught to it for scripts/fuzz.sh.

The document states every rule a schema can state. These are the few it cannot, so that every
request schemathesis calls valid really is, and its "schema-valid request rejected" check means
what it says:

- Page tokens are opaque (`format: page-token`, `audit-page-token`): only tokens the API issued are
  accepted. The strategies below make tokens of the kind it issues (a position in the list), not
  copies of real ones, so pages are still reached at random.
- A password may not be one of the 10,000 most common (the list the server uses,
  src/domain/common-passwords.txt) nor contain the account's username or e-mail. At sign-up those
  are in the body. A profile change (`PUT .../users/{id}`) may target any account the run has
  renamed, in whatever order its cases run, so there the password is spread out with spaces
  ("a b c ..."), which no username or e-mail (neither has a space) can be part of.
- A birthday is a date between 1900-01-01 and today.
- `confirmPassword` (the .NET registration's sign-up) is the password again.

And two that keep the run's own session alive, so that every answer is about the request and not
about a token the run revoked on itself (it once changed its own password early on, and 43 % of
what followed was answered 401 "token revoked" while the run said "No issues found"):

- The account whose token the run sends (`FUZZ_SELF_ID`) is not deleted, and a change of its
  profile changes everything but its password (a new password ends every session of the account).
  Other accounts, those the run signs up, get the full treatment.
- Every answer is written down (`FUZZ_ANSWERS`, one JSON line each), so that scripts/fuzz.sh can
  count the 401s given to the run's own token (`FUZZ_AUTHORIZATION`) and fail a run that lost it.
"""

import base64
import datetime
import json
import os
import pathlib

import schemathesis
from hypothesis import strategies as st


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# A position in a list keyed by UUIDv7 ids, and one in the audit log (outbox sequence numbers).
schemathesis.openapi.format("page-token", st.uuids().map(lambda u: _token(str(u))))
schemathesis.openapi.format("audit-page-token", st.integers(min_value=0, max_value=2**62).map(lambda n: _token(str(n))))

_COMMON = set(
    (pathlib.Path(__file__).resolve().parent.parent / "src/domain/common-passwords.txt").read_text().split("\n")
)


def _password_ok(body: dict) -> bool:
    password = body.get("password")
    if not isinstance(password, str):
        return True
    lower = password.lower()
    if lower in _COMMON:
        return False
    for name in (body.get(k) for k in ("username", "user_name", "email")):
        if not isinstance(name, str):
            continue
        name = name.strip().lower()
        local = name.split("@", 1)[0]
        if len(name) >= 3 and name in lower or len(local) >= 3 and local in lower:
            return False
    return True


def _birthday_ok(body: dict) -> bool:
    day = body.get("birth_day")
    if not isinstance(day, str):
        return True
    try:
        parsed = datetime.date.fromisoformat(day)
    except ValueError:
        return False  # not a date (`format: date`)
    return datetime.date(1900, 1, 1) <= parsed <= datetime.date.today()


def _positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode.is_positive


def _profile_change(case) -> bool:
    return case.method.upper() == "PUT" and "/users/{id}" in case.path


def _of_own_account(case) -> bool:
    own = os.environ.get("FUZZ_SELF_ID")
    path_parameters = getattr(case, "path_parameters", None) or {}
    return bool(own) and "/users/{id}" in case.path and str(path_parameters.get("id", "")).lower() == own.lower()


def _public(case) -> bool:
    """The operation takes no token (its `security` lists the empty requirement): logins, sign-ups."""
    security = case.operation.definition.raw.get("security")
    return isinstance(security, list) and {} in security


# Case hooks, not body hooks: the coverage phase runs case hooks only.
@schemathesis.hook
def filter_case(ctx, case):
    # A negative case is meant to break a rule; these are no business of it.
    if case.method.upper() == "DELETE" and _of_own_account(case):
        return False
    if not _positive(case) or not isinstance(case.body, dict):
        return True
    return _password_ok(case.body) and _birthday_ok(case.body)


@schemathesis.hook
def map_case(ctx, case):
    if _positive(case) and isinstance(case.body, dict) and "confirmPassword" in case.body:
        case.body["confirmPassword"] = case.body.get("password")
    if _positive(case) and _profile_change(case) and _of_own_account(case) and isinstance(case.body, dict):
        case.body.pop("password", None)
    if _positive(case) and _profile_change(case) and isinstance(case.body, dict):
        password = case.body.get("password")
        if isinstance(password, str) and password.strip():
            # Padded, so a password that was mostly spaces still has its 10 characters.
            case.body["password"] = " ".join((password.replace(" ", "") + "uvwxyz")[:64])
    return case


@schemathesis.hook
def after_call(ctx, case, response):
    answers = os.environ.get("FUZZ_ANSWERS")
    if not answers:
        return
    sent = response.request.headers.get("Authorization")
    line = {
        "operation": f"{case.method.upper()} {case.path}",
        "status": response.status_code,
        # Only answers to the run's own token say whether it still holds: probes of the checks send
        # none or a forged one, and a log-in refuses a wrong password with 401 whatever the token.
        "own_token": sent is not None and sent == os.environ.get("FUZZ_AUTHORIZATION") and not _public(case),
    }
    with open(answers, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
