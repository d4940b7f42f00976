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
"""

import base64
import datetime
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


# Case hooks, not body hooks: the coverage phase runs case hooks only.
@schemathesis.hook
def filter_case(ctx, case):
    # A negative case is meant to break a rule; these are no business of it.
    if not _positive(case) or not isinstance(case.body, dict):
        return True
    return _password_ok(case.body) and _birthday_ok(case.body)


@schemathesis.hook
def map_case(ctx, case):
    if _positive(case) and isinstance(case.body, dict) and "confirmPassword" in case.body:
        case.body["confirmPassword"] = case.body.get("password")
    if _positive(case) and _profile_change(case) and isinstance(case.body, dict):
        password = case.body.get("password")
        if isinstance(password, str) and password.strip():
            # Padded, so a password that was mostly spaces still has its 10 characters.
            case.body["password"] = " ".join((password.replace(" ", "") + "uvwxyz")[:64])
    return case
