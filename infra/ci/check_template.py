#!/usr/bin/env python3
"""Assert the security properties of Latchkey's SAM template.

Usage: python check_template.py template.yaml

Run it with a Python that has cfn-lint installed (the .venv-sam venv): cfn-lint's decoder
reads CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) into their long form.

Prints one line per check (PASS/FAIL and why), then a final line `N passed, M failed`.
Exit status: 0 when every check passed, 1 when any failed, 2 when the template cannot be read.
The checks mirror DESIGN.md section 4 (security promises as mechanisms).
"""

from __future__ import annotations

import json
import re
import sys

try:
    from cfnlint.decode import decode
except ImportError:  # pragma: no cover - environment problem, not a template problem
    print("check_template.py needs cfn-lint (pip install cfn-lint)", file=sys.stderr)
    sys.exit(2)

# The four functions, by logical id, and the cargo binary each one ships.
FUNCTIONS = {
    "AuthFunction": "latchkey-auth",
    "PasskeysFunction": "latchkey-passkeys",
    "StatusFunction": "latchkey-status",
    "BackupFunction": "latchkey-backup",
}
BACKUP_FUNCTION = "BackupFunction"
# IAM actions that have no resource type, so they only accept Resource "*".
UNSCOPED_ACTIONS = {"dynamodb:listbackups"}
# Wildcards allowed inside an ARN: sub-resources of a table of this template.
SCOPED_WILDCARD = re.compile(r"^\$\{[A-Za-z0-9]+\.Arn\}/(index|backup)/\*$")
SIX_HOURS = {"rate(6 hours)", "cron(0 */6 * * ? *)", "cron(0 0/6 * * ? *)"}
BACKUP_INPUT = {"task": "backup"}
RUNTIME = "provided.al2023"
ARCHITECTURES = ["arm64"]
REQUIRED_ENV = ("LATCHKEY_TABLE", "LATCHKEY_KMS_KEY_ID", "LATCHKEY_SECRET_ID", "LATCHKEY_LOG")


# ----------------------------------------------------------------------------- helpers


def as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def is_true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def refs(value) -> set[str]:
    """Logical ids (or parameters) referenced by an intrinsic, recursively."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner.split(".")[0])
            elif key == "Fn::GetAtt":
                target = inner if isinstance(inner, str) else (inner[0] if inner else "")
                if isinstance(target, str):
                    found.add(target.split(".")[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                if isinstance(text, str):
                    for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                        found.add(name.split(".")[0])
                if isinstance(inner, list) and len(inner) > 1:
                    found |= refs(inner[1])
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


def render(value) -> str:
    """A readable one-line form of a value, with intrinsics as ${...}."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key == "Ref":
            return "${%s}" % inner
        if key == "Fn::GetAtt":
            return "${%s}" % (inner if isinstance(inner, str) else ".".join(map(str, inner)))
        if key == "Fn::Sub":
            return str(inner if isinstance(inner, str) else inner[0])
    return json.dumps(value, default=str, sort_keys=True)


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, why: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"PASS  {name}")
        else:
            self.failed += 1
            print(f"FAIL  {name}: {why or 'not satisfied'}")


# ----------------------------------------------------------------------------- checks


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    template, errors = decode(argv[1])
    if errors or not isinstance(template, dict):
        for err in errors or []:
            print(f"cannot read {argv[1]}: {err}", file=sys.stderr)
        if not errors:
            print(f"cannot read {argv[1]}: not a mapping", file=sys.stderr)
        return 2

    r = Report()
    resources = template.get("Resources") or {}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}

    def of_type(*types: str) -> dict:
        return {k: v for k, v in resources.items() if isinstance(v, dict) and v.get("Type") in types}

    keys = of_type("AWS::KMS::Key")
    tables = of_type("AWS::DynamoDB::Table")
    secrets = of_type("AWS::SecretsManager::Secret")
    log_groups = of_type("AWS::Logs::LogGroup")
    owned = set(keys) | set(tables) | set(secrets)

    def props(logical: str) -> dict:
        return (resources.get(logical) or {}).get("Properties") or {}

    def effective(fn_props: dict, key: str):
        return fn_props[key] if key in fn_props else globals_fn.get(key)

    # --- transform, runtime, environment -------------------------------------------------
    transforms = as_list(template.get("Transform"))
    r.check("template uses the SAM transform", "AWS::Serverless-2016-10-31" in transforms,
            f"Transform is {transforms!r}")

    bad_runtime = []
    for fn in FUNCTIONS:
        p = props(fn)
        runtime, archs = effective(p, "Runtime"), effective(p, "Architectures")
        if runtime != RUNTIME or as_list(archs) != ARCHITECTURES:
            bad_runtime.append(f"{fn}: {runtime}/{archs}")
    r.check(f"runtime {RUNTIME} on {ARCHITECTURES[0]} for every function", not bad_runtime,
            "; ".join(bad_runtime))

    env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
    missing_env = [name for name in REQUIRED_ENV if name not in env]
    r.check("globals set " + ", ".join(REQUIRED_ENV), not missing_env,
            "missing " + ", ".join(missing_env))

    # --- DynamoDB table -----------------------------------------------------------------
    if len(tables) != 1:
        r.check("exactly one DynamoDB table", False, f"found {sorted(tables)}")
    for name, table in tables.items():
        tp = table.get("Properties") or {}
        pitr = tp.get("PointInTimeRecoverySpecification") or {}
        r.check(f"table {name}: point-in-time recovery enabled",
                is_true(pitr.get("PointInTimeRecoveryEnabled")),
                "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is not true")
        sse = tp.get("SSESpecification") or {}
        sse_key = refs(sse.get("KMSMasterKeyId"))
        r.check(f"table {name}: SSE with the project KMS key",
                is_true(sse.get("SSEEnabled")) and sse.get("SSEType") == "KMS"
                and bool(sse_key & set(keys)),
                f"SSESpecification is {render(sse)}")
        r.check(f"table {name}: deletion protection enabled",
                is_true(tp.get("DeletionProtectionEnabled")),
                "DeletionProtectionEnabled is not true")
        r.check(f"table {name}: DeletionPolicy and UpdateReplacePolicy Retain",
                table.get("DeletionPolicy") == "Retain" and table.get("UpdateReplacePolicy") == "Retain",
                f"DeletionPolicy={table.get('DeletionPolicy')}, "
                f"UpdateReplacePolicy={table.get('UpdateReplacePolicy')}")
        ttl = tp.get("TimeToLiveSpecification") or {}
        r.check(f"table {name}: TTL on attribute `ttl`",
                ttl.get("AttributeName") == "ttl" and is_true(ttl.get("Enabled")),
                f"TimeToLiveSpecification is {render(ttl)}")

    # --- KMS key ------------------------------------------------------------------------
    if not keys:
        r.check("a customer-managed KMS key exists", False, "no AWS::KMS::Key")
    for name, key in keys.items():
        kp = key.get("Properties") or {}
        r.check(f"kms key {name}: rotation enabled", is_true(kp.get("EnableKeyRotation")),
                "EnableKeyRotation is not true")
        r.check(f"kms key {name}: DeletionPolicy Retain", key.get("DeletionPolicy") == "Retain",
                f"DeletionPolicy={key.get('DeletionPolicy')}")
        public = []
        for st in as_list((kp.get("KeyPolicy") or {}).get("Statement")):
            principal = st.get("Principal")
            aws = as_list(principal.get("AWS")) if isinstance(principal, dict) else [principal]
            if st.get("Effect") == "Allow" and "*" in aws and not st.get("Condition"):
                public.append(st.get("Sid", "<no Sid>"))
        r.check(f"kms key {name}: no unconditioned '*' principal in the key policy", not public,
                "statements " + ", ".join(public))

    # --- Secrets Manager ----------------------------------------------------------------
    if not secrets:
        r.check("a Secrets Manager secret exists", False, "no AWS::SecretsManager::Secret")
    for name in secrets:
        r.check(f"secret {name}: encrypted with the project KMS key",
                bool(refs(props(name).get("KmsKeyId")) & set(keys)),
                f"KmsKeyId is {render(props(name).get('KmsKeyId'))}")

    # --- functions: build, one narrow policy, log group -----------------------------------
    for fn, binary in FUNCTIONS.items():
        res = resources.get(fn)
        if not isinstance(res, dict) or res.get("Type") != "AWS::Serverless::Function":
            r.check(f"{fn}: exists as AWS::Serverless::Function", False, "missing")
            continue
        p = res.get("Properties") or {}
        meta = res.get("Metadata") or {}
        r.check(f"{fn}: builds cargo binary {binary}",
                meta.get("BuildMethod") == "rust-cargolambda"
                and (meta.get("BuildProperties") or {}).get("Binary") == binary,
                f"Metadata is {render(meta)}")
        r.check(f"{fn}: least-privilege inline policy", *policy_ok(p, owned))
        r.check(f"{fn}: log group with retention", *log_group_ok(fn, p, log_groups, globals_fn))

    # --- backup schedule ----------------------------------------------------------------
    events = (props(BACKUP_FUNCTION).get("Events")) or {}
    schedules, exposed = [], []
    for ev_name, ev in events.items():
        ev_type, ev_props = ev.get("Type"), ev.get("Properties") or {}
        if ev_type in ("Schedule", "ScheduleV2"):
            expr = ev_props.get("Schedule") or ev_props.get("ScheduleExpression")
            enabled = ev_props.get("Enabled", True) is not False and \
                ev_props.get("State", "ENABLED") == "ENABLED"
            try:
                payload = json.loads(ev_props.get("Input") or "null")
            except (TypeError, ValueError):
                payload = None
            schedules.append((ev_name, expr, enabled, payload))
        elif ev_type in ("Api", "HttpApi"):
            exposed.append(ev_name)
    good = [s for s in schedules if s[1] in SIX_HOURS and s[2] and s[3] == BACKUP_INPUT]
    r.check(f"{BACKUP_FUNCTION}: enabled schedule every 6 hours with input {json.dumps(BACKUP_INPUT)}",
            len(good) == 1 and len(schedules) == 1,
            f"schedules found: {schedules!r}")
    r.check(f"{BACKUP_FUNCTION}: no HTTP route", not exposed, "HTTP events " + ", ".join(exposed))

    # --- HTTP API custom domain and access logs -------------------------------------------
    domains = []  # (where, security policy)
    apis = of_type("AWS::Serverless::HttpApi", "AWS::Serverless::Api")
    for name, api in apis.items():
        dom = (api.get("Properties") or {}).get("Domain")
        if isinstance(dom, dict) and "Fn::If" not in dom:
            domains.append((f"{name}.Domain", dom.get("SecurityPolicy")))
    for name, dn in of_type("AWS::ApiGatewayV2::DomainName").items():
        for cfg in as_list((dn.get("Properties") or {}).get("DomainNameConfigurations")) or [{}]:
            domains.append((name, cfg.get("SecurityPolicy")))
    for name, dn in of_type("AWS::ApiGateway::DomainName").items():
        domains.append((name, (dn.get("Properties") or {}).get("SecurityPolicy")))
    weak = [f"{where}={policy}" for where, policy in domains if policy != "TLS_1_2"]
    r.check("HttpApi custom domain uses SecurityPolicy TLS_1_2", bool(domains) and not weak,
            ("weak: " + ", ".join(weak)) if weak else "no custom domain declared")

    open_default = [n for n, api in apis.items()
                    if "DisableExecuteApiEndpoint" not in (api.get("Properties") or {})]
    r.check("HttpApi default execute-api endpoint can be disabled (custom domain only)",
            bool(apis) and not open_default, "DisableExecuteApiEndpoint missing on " +
            (", ".join(open_default) or "<no HttpApi>"))

    no_logs = []
    for name, api in apis.items():
        dest = ((api.get("Properties") or {}).get("AccessLogSettings") or {}).get("DestinationArn")
        target = refs(dest) & set(log_groups)
        if not target or any("RetentionInDays" not in (log_groups[t].get("Properties") or {})
                             for t in target):
            no_logs.append(name)
    r.check("HttpApi access logs go to a log group with retention", bool(apis) and not no_logs,
            "no access log group with retention on " + (", ".join(no_logs) or "<no HttpApi>"))

    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 else 1


def policy_ok(fn_props: dict, owned: set[str]) -> tuple[bool, str]:
    """Exactly one inline statement list; explicit actions; resources of this stack only."""
    if "Role" in fn_props:
        return False, "uses an explicit Role instead of its own inline policy"
    policies = fn_props.get("Policies")
    if not isinstance(policies, list) or len(policies) != 1:
        return False, f"Policies must be a list of exactly one inline policy, got {render(policies)}"
    doc = policies[0]
    if not isinstance(doc, dict) or set(doc) - {"Version", "Statement"}:
        return False, "the policy must be an inline document {Statement: [...]}, not a managed " \
                      "policy or a SAM policy template"
    statements = doc.get("Statement")
    if not isinstance(statements, list) or not statements:
        return False, "Statement must be a non-empty list"
    problems = []
    for i, st in enumerate(statements):
        sid = st.get("Sid") if isinstance(st, dict) else None
        label = sid or f"statement {i}"
        if not isinstance(st, dict):
            problems.append(f"{label}: not a mapping")
            continue
        if not sid:
            problems.append(f"statement {i}: no Sid")
        if st.get("Effect") != "Allow":
            problems.append(f"{label}: Effect is {st.get('Effect')}")
        for neg in ("NotAction", "NotResource", "NotPrincipal"):
            if neg in st:
                problems.append(f"{label}: uses {neg}")
        actions = as_list(st.get("Action"))
        if not actions:
            problems.append(f"{label}: no Action")
        for action in actions:
            if not isinstance(action, str) or ":" not in action or "*" in action or "?" in action:
                problems.append(f"{label}: action {render(action)} is not one explicit action")
        resources = as_list(st.get("Resource"))
        if not resources:
            problems.append(f"{label}: no Resource")
        for res in resources:
            text = render(res)
            if text == "*":
                lowered = {a.lower() for a in actions if isinstance(a, str)}
                if not lowered or not lowered <= UNSCOPED_ACTIONS:
                    problems.append(f"{label}: Resource '*' is only allowed for "
                                    f"{sorted(UNSCOPED_ACTIONS)}, not {actions}")
                continue
            if "*" in text and not SCOPED_WILDCARD.match(text):
                problems.append(f"{label}: wildcard resource {text}")
            if not refs(res) & owned:
                problems.append(f"{label}: resource {text} is not this stack's table, key or secret")
    return not problems, "; ".join(problems)


def log_group_ok(fn: str, fn_props: dict, log_groups: dict, globals_fn: dict) -> tuple[bool, str]:
    """The function logs to a log group of this template that has a retention."""
    logging = fn_props.get("LoggingConfig") or globals_fn.get("LoggingConfig") or {}
    candidates = refs(logging.get("LogGroup")) & set(log_groups)
    if not candidates:
        # The classic form: a log group named /aws/lambda/<the function's name>.
        for name, lg in log_groups.items():
            lg_name = render((lg.get("Properties") or {}).get("LogGroupName"))
            if lg_name.startswith("/aws/lambda/") and fn in refs(
                    (lg.get("Properties") or {}).get("LogGroupName")):
                candidates.add(name)
    if not candidates:
        return False, "no LoggingConfig.LogGroup and no /aws/lambda/${Function} log group"
    for name in candidates:
        if "RetentionInDays" not in ((log_groups[name].get("Properties")) or {}):
            return False, f"log group {name} has no RetentionInDays"
    return True, ""


if __name__ == "__main__":
    sys.exit(main(sys.argv))
