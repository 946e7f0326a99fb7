#!/usr/bin/env python3
"""Assert the security properties of Latchkey's SAM template.

Usage: python check_template.py template.yaml

Run it with a Python that has cfn-lint installed (the .venv-sam venv): cfn-lint's decoder
reads CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) into their long form.

Prints one line per check (PASS/FAIL and why), then a final line `N passed, M failed`.
Exit status: 0 when every check passed, 1 when any failed, 2 when the template cannot be read.
The checks mirror docs/architecture.md section 4 (security promises as mechanisms).
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
    "ClientFunction": "latchkey-client",
    "StatusFunction": "latchkey-status",
    "BackupFunction": "latchkey-backup",
    "SealerFunction": "latchkey-sealer",
    "AdminFunction": "latchkey-admin-api",
}
BACKUP_FUNCTION = "BackupFunction"
SEALER_FUNCTION = "SealerFunction"
# The sealer's stream filter: inserts of audit events (sort key EV#...) only.
SEALER_FILTER = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "EV#"}]}}}}
# IAM actions that have no resource type, so they only accept Resource "*".
UNSCOPED_ACTIONS = {"dynamodb:listbackups"}
# Wildcards allowed inside an ARN: sub-resources of a table of this template.
SCOPED_WILDCARD = re.compile(r"^\$\{[A-Za-z0-9]+\.Arn\}/(index|backup)/\*$")
# The backup function's restore drills use scratch tables named <table>-drill-<timestamp>.
SCRATCH_TABLES = re.compile(
    r"^arn:\$\{AWS::Partition\}:dynamodb:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
    r"table/\$\{[A-Za-z0-9]+\}-drill-\*$")
SIX_HOURS = {"rate(6 hours)", "cron(0 */6 * * ? *)", "cron(0 0/6 * * ? *)"}
BACKUP_INPUT = {"task": "backup"}
DRILL_INPUT = {"task": "drill"}
REKEY_INPUT = {"task": "rekey"}
PURGE_INPUT = {"task": "purge"}
# Tenants' own KMS keys (crypto-shredding): any key of the account, admitted only by the tag
# naming this stack's data key (policy_ok checks the condition).
TENANT_KEYS = "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
TENANT_KEY_TAG = "aws:ResourceTag/latchkey:platform-key"
# A weekly schedule: rate(7 days), or a cron naming one day of the week.
WEEKLY = re.compile(r"^(rate\(7 days\)|cron\(\S+ \S+ \? \* (SUN|MON|TUE|WED|THU|FRI|SAT|[1-7]) \*\))$")


def backup_allowed(table: str, key: str) -> dict[str, set[str]]:
    """Every (resource -> actions) the backup function may hold, and must: nothing more.

    Table: backup, PITR check and repair, the scan a drill compares against, run records.
    Backups of the table: retention and restore. ListBackups has no resource type. Scratch
    tables: what RestoreTableFromBackup needs on its target, then describe, scan, delete. The
    table's key: what a restore of an SSE-KMS table needs, through DynamoDB only.
    """
    return {
        "${%s.Arn}" % table: {
            "dynamodb:createbackup", "dynamodb:describecontinuousbackups",
            "dynamodb:updatecontinuousbackups", "dynamodb:scan", "dynamodb:getitem",
            "dynamodb:putitem", "dynamodb:deleteitem", "dynamodb:query"},
        "${%s.Arn}/backup/*" % table: {"dynamodb:deletebackup", "dynamodb:restoretablefrombackup"},
        "*": {"dynamodb:listbackups"},
        "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${%s}-drill-*"
        % table: {
            "dynamodb:batchwriteitem", "dynamodb:putitem", "dynamodb:updateitem",
            "dynamodb:deleteitem", "dynamodb:getitem", "dynamodb:query", "dynamodb:scan",
            "dynamodb:describetable", "dynamodb:deletetable"},
        "${%s.Arn}" % key: {
            "kms:creategrant", "kms:decrypt", "kms:describekey", "kms:generatedatakey"},
        "${Secret}": {"secretsmanager:getsecretvalue"},
        TENANT_KEYS: {"kms:decrypt"},
    }
RUNTIME = "provided.al2023"
ARCHITECTURES = ["arm64"]
REQUIRED_ENV = ("LATCHKEY_TABLE", "LATCHKEY_KMS_KEY_ID", "LATCHKEY_SECRET_ID", "LATCHKEY_LOG",
                "LATCHKEY_SES", "LATCHKEY_MAIL_FROM")


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

    all_keys = of_type("AWS::KMS::Key")
    # Data keys encrypt; the audit signing key signs checkpoints (asymmetric, never rotated by
    # KMS: a new key gets a new id, which each checkpoint names).
    keys = {k: v for k, v in all_keys.items()
            if (v.get("Properties") or {}).get("KeyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"}
    signing_keys = {k: v for k, v in all_keys.items() if k not in keys}
    tables = of_type("AWS::DynamoDB::Table")
    secrets = of_type("AWS::SecretsManager::Secret")
    log_groups = of_type("AWS::Logs::LogGroup")
    queues = of_type("AWS::SQS::Queue")
    owned = set(all_keys) | set(tables) | set(secrets) | set(queues)

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
        stream = tp.get("StreamSpecification") or {}
        r.check(f"table {name}: a stream with new images (the audit sealer's input)",
                stream.get("StreamViewType") in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"),
                f"StreamSpecification is {render(stream)}")
        r.check(f"table {name}: TTL on attribute `ttl`",
                ttl.get("AttributeName") == "ttl" and is_true(ttl.get("Enabled")),
                f"TimeToLiveSpecification is {render(ttl)}")

    # --- KMS keys -----------------------------------------------------------------------
    if not keys:
        r.check("a customer-managed KMS key exists", False, "no AWS::KMS::Key")
    for name, key in keys.items():
        kp = key.get("Properties") or {}
        r.check(f"kms key {name}: rotation enabled", is_true(kp.get("EnableKeyRotation")),
                "EnableKeyRotation is not true")
    r.check("exactly one audit signing key, ECC_NIST_P256 for SIGN_VERIFY",
            len(signing_keys) == 1 and all(
                (k.get("Properties") or {}).get("KeySpec") == "ECC_NIST_P256"
                and (k.get("Properties") or {}).get("KeyUsage") == "SIGN_VERIFY"
                for k in signing_keys.values()),
            f"signing keys: {sorted(signing_keys)}")
    for name, key in all_keys.items():
        kp = key.get("Properties") or {}
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
        r.check(f"{fn}: least-privilege inline policy",
                *policy_ok(p, owned | {MAIL_IDENTITY},
                           SCRATCH_TABLES if fn == BACKUP_FUNCTION else None))
        r.check(f"{fn}: mail only from the configured SES identity", *mail_ok(p))
        r.check(f"{fn}: log group with retention", *log_group_ok(fn, p, log_groups, globals_fn))

    # --- status function: its routes as the code declares them -------------------------
    r.check(f"{STATUS_FUNCTION}: serves every route of functions/status ROUTES, writes only "
            "under /status/manage/", *status_routes_ok(props(STATUS_FUNCTION), argv[1]))

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
    drills = [s for s in schedules
              if isinstance(s[1], str) and WEEKLY.match(s[1]) and s[2] and s[3] == DRILL_INPUT]
    r.check(f"{BACKUP_FUNCTION}: enabled schedule every 6 hours with input {json.dumps(BACKUP_INPUT)}",
            len(good) == 1, f"schedules found: {schedules!r}")
    r.check(f"{BACKUP_FUNCTION}: enabled weekly schedule with input {json.dumps(DRILL_INPUT)}",
            len(drills) == 1, f"schedules found: {schedules!r}")
    rekeys = [s for s in schedules if s[1] == "rate(1 hour)" and s[2] and s[3] == REKEY_INPUT]
    r.check(f"{BACKUP_FUNCTION}: enabled hourly schedule with input {json.dumps(REKEY_INPUT)}",
            len(rekeys) == 1, f"schedules found: {schedules!r}")
    purges = [s for s in schedules if s[1] == "rate(1 hour)" and s[2] and s[3] == PURGE_INPUT]
    r.check(f"{BACKUP_FUNCTION}: enabled hourly schedule with input {json.dumps(PURGE_INPUT)}",
            len(purges) == 1, f"schedules found: {schedules!r}")
    r.check(f"{BACKUP_FUNCTION}: no schedules but the backup, the drill, the re-key and the purge",
            len(schedules) == 4, f"schedules found: {schedules!r}")
    if len(tables) == 1 and len(keys) == 1:
        r.check(f"{BACKUP_FUNCTION}: policy grants exactly the backup and drill actions",
                *backup_policy_exact(props(BACKUP_FUNCTION), next(iter(tables)), next(iter(keys))))
    else:
        r.check(f"{BACKUP_FUNCTION}: policy grants exactly the backup and drill actions", False,
                "needs exactly one table and one KMS key to name them")

    # --- AWS Backup: daily plan with an offsite copy; alarms on failed runs and drills -------
    plans = of_type("AWS::Backup::BackupPlan")
    offsite = []
    for name, plan in plans.items():
        for rule in as_list(((plan.get("Properties") or {}).get("BackupPlan") or {})
                            .get("BackupPlanRule")):
            for copy in as_list((rule or {}).get("CopyActions")):
                if "OffsiteVaultArn" in refs((copy or {}).get("DestinationBackupVaultArn")):
                    offsite.append(f"{name}.{rule.get('RuleName')}")
    r.check("AWS Backup plan copies to the OffsiteVaultArn vault", bool(offsite),
            f"no CopyActions to OffsiteVaultArn in {sorted(plans) or 'any plan'}")
    selected = [n for n, sel in of_type("AWS::Backup::BackupSelection").items()
                if refs(((sel.get("Properties") or {}).get("BackupSelection") or {})
                        .get("Resources")) & set(tables)]
    r.check("AWS Backup selection covers the table", bool(selected), "no selection names it")
    alarmed = {((a.get("Properties") or {}).get("Namespace"),
                (a.get("Properties") or {}).get("MetricName"))
               for a in of_type("AWS::CloudWatch::Alarm").values()}
    for metric in ("BackupSucceeded", "DrillSucceeded"):
        r.check(f"alarm on Latchkey/{metric}", ("Latchkey", metric) in alarmed,
                f"alarms watch {sorted(map(str, alarmed))}")
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

    # --- audit sealer: the table's stream, filtered, with a failure destination and alarm ---
    r.check(f"{SEALER_FUNCTION}: driven by the table's stream, event inserts only, bisecting, "
            "with an on-failure destination", *sealer_stream_ok(props(SEALER_FUNCTION), tables))
    sealer_alarms = [n for n, a in of_type("AWS::CloudWatch::Alarm").items()
                     if (a.get("Properties") or {}).get("MetricName") == "IteratorAge"
                     and SEALER_FUNCTION in refs((a.get("Properties") or {}).get("Dimensions"))]
    r.check(f"{SEALER_FUNCTION}: an alarm on the stream's iterator age", bool(sealer_alarms),
            "no IteratorAge alarm names it")
    signers = sorted(fn for fn in FUNCTIONS if any(
        (a or "").lower() == "kms:sign"
        for doc in as_list(props(fn).get("Policies")) if isinstance(doc, dict)
        for st in as_list(doc.get("Statement")) if isinstance(st, dict)
        for a in as_list(st.get("Action")) if isinstance(a, str)))
    r.check("only the sealer may kms:Sign", signers == [SEALER_FUNCTION], f"signers: {signers}")

    # --- API Gateway alarms watch the stage that exists -------------------------------------
    stages = {name: (api.get("Properties") or {}).get("StageName") for name, api in apis.items()}
    wrong_stage = []
    api_alarms = 0
    for name, alarm in of_type("AWS::CloudWatch::Alarm").items():
        p = alarm.get("Properties") or {}
        if p.get("Namespace") != "AWS/ApiGateway":
            continue
        api_alarms += 1
        dims = {d.get("Name"): d.get("Value") for d in as_list(p.get("Dimensions"))
                if isinstance(d, dict)}
        api = next(iter(refs(dims.get("ApiId")) & set(apis)), None)
        if api is None or dims.get("Stage") != stages.get(api):
            wrong_stage.append(f"{name} watches stage {dims.get('Stage')!r}, "
                               f"the API's is {stages.get(api)!r}")
    r.check("API Gateway alarms name the HttpApi's own stage", api_alarms > 0 and not wrong_stage,
            "; ".join(wrong_stage) or "no API Gateway alarm")

    # --- alarms: every function's errors, throttles and duration; the table's throttling ----
    alarms = of_type("AWS::CloudWatch::Alarm")

    def alarms_on(namespace: str, metric: str, target: str) -> list[dict]:
        return [a.get("Properties") or {} for a in alarms.values()
                if (a.get("Properties") or {}).get("Namespace") == namespace
                and (a.get("Properties") or {}).get("MetricName") == metric
                and target in refs((a.get("Properties") or {}).get("Dimensions"))]

    for fn in FUNCTIONS:
        timeout_ms = int(effective(props(fn), "Timeout") or 3) * 1000
        missing = [m for m in ("Errors", "Throttles") if not alarms_on("AWS/Lambda", m, fn)]
        durations = alarms_on("AWS/Lambda", "Duration", fn)
        if not durations:
            missing.append("Duration")
        late = [d.get("Threshold") for d in durations
                if not float(d.get("Threshold") or 0) < timeout_ms]
        r.check(f"{fn}: alarms on Errors, Throttles and Duration (below its timeout)",
                not missing and not late,
                (f"no alarm on {', '.join(missing)}" if missing else "") +
                (f"; Duration threshold {late} not below {timeout_ms} ms" if late else ""))
    for name in tables:
        gaps = [m for m in ("ReadThrottleEvents", "WriteThrottleEvents")
                if not alarms_on("AWS/DynamoDB", m, name)]
        r.check(f"table {name}: alarms on read and write throttling", not gaps,
                "no alarm on " + ", ".join(gaps))

    # --- API throttling: sized by parameters -------------------------------------------------
    parameters = template.get("Parameters") or {}
    bad_throttle = []
    for name, api in apis.items():
        route = (api.get("Properties") or {}).get("DefaultRouteSettings") or {}
        for field, floor in (("ThrottlingRateLimit", 1000), ("ThrottlingBurstLimit", 1000)):
            value = route.get(field)
            param = next(iter(refs(value) & set(parameters)), None) if isinstance(value, dict) else None
            default = (parameters.get(param) or {}).get("Default") if param else None
            if param is None or default is None or float(default) < floor:
                bad_throttle.append(f"{name}.{field} is {render(value)} (want a parameter "
                                    f"defaulting to at least {floor})")
    r.check("API throttling comes from parameters sized for production", bool(apis) and
            not bad_throttle, "; ".join(bad_throttle) or "no HttpApi")

    # --- the data key: direct use only by this stack's roles, with a tenant's context --------
    role_path = render(globals_fn.get("RolePath"))
    overridden = [fn for fn in FUNCTIONS if "RolePath" in props(fn) or "Role" in props(fn)]
    r.check("function roles live under the stack's own path (/${AWS::StackName}/)",
            role_path == "/${AWS::StackName}/" and not overridden,
            f"Globals RolePath is {role_path!r}; overridden by {overridden}")
    for name, key in keys.items():
        loose = []
        for st in as_list(((key.get("Properties") or {}).get("KeyPolicy") or {}).get("Statement")):
            if not isinstance(st, dict) or st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal")
            if not (isinstance(principal, dict) and "AWS" in principal):
                continue
            actions = {a.lower() for a in as_list(st.get("Action")) if isinstance(a, str)}
            if not actions & {"kms:decrypt", "kms:generatedatakey", "kms:*", "kms:decrypt*",
                              "kms:generatedatakey*"}:
                continue
            cond = st.get("Condition") or {}
            via = (cond.get("StringEquals") or {}).get("kms:ViaService")
            arns = json.dumps((cond.get("ArnLike") or {}).get("aws:PrincipalArn"), default=str)
            context = (cond.get("Null") or {}).get("kms:EncryptionContext:latchkey:tenant")
            direct_ok = ":role/${AWS::StackName}/*" in arns and str(context).lower() == "false"
            if not via and not direct_ok:
                loose.append(st.get("Sid", "<no Sid>"))
        r.check(f"kms key {name}: data keys open only for the stack's roles, with a tenant's "
                "encryption context (or through a service)", not loose,
                "statements " + ", ".join(loose))

    # --- reserved concurrency, recovery points nobody deletes, encrypted logs ---------------
    for fn in (BACKUP_FUNCTION, SEALER_FUNCTION):
        reserved = props(fn).get("ReservedConcurrentExecutions")
        r.check(f"{fn}: reserved concurrency (public routes cannot starve it)",
                reserved is not None, "no ReservedConcurrentExecutions")
    vaults = of_type("AWS::Backup::BackupVault")
    unguarded = []
    for name, vault in vaults.items():
        denied = set()
        for st in as_list(((vault.get("Properties") or {}).get("AccessPolicy") or {})
                          .get("Statement")):
            if isinstance(st, dict) and st.get("Effect") == "Deny" and \
                    st.get("Principal") in ("*", {"AWS": "*"}) and not st.get("Condition"):
                denied |= {a.lower() for a in as_list(st.get("Action")) if isinstance(a, str)}
        if "backup:deleterecoverypoint" not in denied:
            unguarded.append(name)
    r.check("backup vaults refuse DeleteRecoveryPoint to every principal",
            bool(vaults) and not unguarded, "not refused in " + (", ".join(unguarded) or "<none>"))
    plain_logs = [n for n, lg in log_groups.items()
                  if not refs((lg.get("Properties") or {}).get("KmsKeyId")) & set(keys)]
    logs_may_use = any(
        isinstance(st, dict) and st.get("Effect") == "Allow"
        and "logs." in render((st.get("Principal") or {}).get("Service"))
        for key in keys.values()
        for st in as_list(((key.get("Properties") or {}).get("KeyPolicy") or {}).get("Statement")))
    r.check("every log group is encrypted with the project key (and the key admits Logs)",
            bool(log_groups) and not plain_logs and logs_may_use,
            ("plain: " + ", ".join(plain_logs)) if plain_logs else "no key statement for logs.")

    # --- the optional edge: per-client rate rules in front of the API ---------------------
    r.check("the optional edge stack limits each client address (WAF rate rule by IP on a "
            "CloudFront distribution)", *edge_ok(argv[1]))

    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 else 1


EDGE_TEMPLATE = "infra/edge/template.yaml"


def edge_ok(template_path: str) -> tuple[bool, str]:
    """infra/edge/template.yaml: a CLOUDFRONT web ACL whose rules include a rate-based block
    aggregated by client IP, attached to a distribution that reaches the API over TLS 1.2."""
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(template_path)), EDGE_TEMPLATE)
    edge, errors = decode(path)
    if errors or not isinstance(edge, dict):
        return False, f"cannot read {EDGE_TEMPLATE}: {errors}"
    res = edge.get("Resources") or {}
    acls = {n: v for n, v in res.items() if v.get("Type") == "AWS::WAFv2::WebACL"}
    dists = [v for v in res.values() if v.get("Type") == "AWS::CloudFront::Distribution"]
    problems = []
    per_ip = [n for n, acl in acls.items()
              if (acl.get("Properties") or {}).get("Scope") == "CLOUDFRONT" and any(
                  ((rule.get("Statement") or {}).get("RateBasedStatement") or {})
                  .get("AggregateKeyType") == "IP" and "Block" in (rule.get("Action") or {})
                  for rule in as_list((acl.get("Properties") or {}).get("Rules")))]
    if not per_ip:
        problems.append("no CLOUDFRONT web ACL with a blocking rate rule per IP")
    for d in dists:
        cfg = (d.get("Properties") or {}).get("DistributionConfig") or {}
        if not refs(cfg.get("WebACLId")) & set(per_ip):
            problems.append("the distribution is not behind the per-client web ACL")
        for origin in as_list(cfg.get("Origins")):
            oc = (origin or {}).get("CustomOriginConfig") or {}
            if oc.get("OriginProtocolPolicy") != "https-only" or \
                    as_list(oc.get("OriginSSLProtocols")) != ["TLSv1.2"]:
                problems.append("an origin is reached without https-only TLS 1.2")
        if (cfg.get("DefaultCacheBehavior") or {}).get("ViewerProtocolPolicy") != "https-only":
            problems.append("viewers may use plain http")
    if not dists:
        problems.append("no CloudFront distribution")
    return not problems, "; ".join(problems)


def backup_policy_exact(fn_props: dict, table: str, key: str) -> tuple[bool, str]:
    """The backup function's (action, resource) pairs equal backup_allowed(): no extra action,
    no extra resource, none missing; its KMS use only through DynamoDB."""
    allowed = backup_allowed(table, key)
    want = {(a, res) for res, actions in allowed.items() for a in actions}
    have = set()
    problems = []
    for doc in as_list(fn_props.get("Policies")):
        for st in as_list((doc or {}).get("Statement") if isinstance(doc, dict) else None):
            if not isinstance(st, dict):
                continue
            actions = {a.lower() for a in as_list(st.get("Action")) if isinstance(a, str)}
            for res in as_list(st.get("Resource")):
                have |= {(a, render(res)) for a in actions}
            # The re-key job opens tenants' data keys directly (Decrypt alone); every other KMS
            # use is a restore's, through DynamoDB only.
            if any(a.startswith("kms:") for a in actions) and actions != {"kms:decrypt"}:
                via = (((st.get("Condition") or {}).get("StringEquals") or {})
                       .get("kms:ViaService"))
                if not render(via).startswith("dynamodb."):
                    problems.append(f"{st.get('Sid')}: KMS without kms:ViaService dynamodb")
    extra, missing = sorted(have - want), sorted(want - have)
    if extra:
        problems.append("grants more than it needs: " +
                        ", ".join(f"{a} on {res}" for a, res in extra))
    if missing:
        problems.append("lacks what it needs: " +
                        ", ".join(f"{a} on {res}" for a, res in missing))
    return not problems, "; ".join(problems)


def sealer_stream_ok(fn_props: dict, tables: dict) -> tuple[bool, str]:
    """One DynamoDB event on the table's StreamArn, filtered to event inserts, bisecting failed
    batches, with an OnFailure destination."""
    streams = [ev.get("Properties") or {} for ev in (fn_props.get("Events") or {}).values()
               if ev.get("Type") == "DynamoDB"]
    if len(streams) != 1:
        return False, f"expected one DynamoDB event, found {len(streams)}"
    ev = streams[0]
    problems = []
    if not refs(ev.get("Stream")) & set(tables) or "StreamArn" not in render(ev.get("Stream")):
        problems.append(f"Stream is {render(ev.get('Stream'))}, not the table's StreamArn")
    patterns = []
    for f in as_list(((ev.get("FilterCriteria") or {}).get("Filters"))):
        try:
            patterns.append(json.loads((f or {}).get("Pattern") or "null"))
        except (TypeError, ValueError):
            patterns.append(None)
    if patterns != [SEALER_FILTER]:
        problems.append(f"FilterCriteria patterns are {patterns!r}, want [{SEALER_FILTER!r}]")
    if not is_true(ev.get("BisectBatchOnFunctionError")):
        problems.append("BisectBatchOnFunctionError is not true")
    if not ((ev.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"):
        problems.append("no DestinationConfig.OnFailure.Destination")
    return not problems, "; ".join(problems)


MAIL_IDENTITY = "MailIdentity"
MAIL_RESOURCE = ("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
                 "${MailIdentity}")


def mail_ok(fn_props: dict) -> tuple[bool, str]:
    """Any SES statement sends (ses:SendEmail only) from the MailIdentity parameter's identity
    only, and the identity parameter appears in no other statement."""
    problems = []
    for doc in as_list(fn_props.get("Policies")):
        for st in as_list((doc or {}).get("Statement") if isinstance(doc, dict) else None):
            if not isinstance(st, dict):
                continue
            actions = {a.lower() for a in as_list(st.get("Action")) if isinstance(a, str)}
            texts = [render(res) for res in as_list(st.get("Resource"))]
            ses = {a for a in actions if a.startswith("ses:")}
            names_identity = any(MAIL_IDENTITY in t for t in texts)
            if ses and (ses != {"ses:sendemail"} or actions != ses or texts != [MAIL_RESOURCE]):
                problems.append(f"{st.get('Sid')}: SES must be ses:SendEmail on {MAIL_RESOURCE} "
                                f"alone, got {sorted(actions)} on {texts}")
            if names_identity and not ses:
                problems.append(f"{st.get('Sid')}: the mail identity is granted non-SES actions")
    return not problems, "; ".join(problems)


STATUS_FUNCTION = "StatusFunction"
STATUS_ROUTES_FILE = "functions/status/src/lib.rs"
# A row of the status function's TABLE: (RouteId, "METHOD", "/path", Access).
STATUS_ROUTE = re.compile(r'\(\s*\w+,\s*"(GET|POST|PATCH|PUT|DELETE)",\s*"([^"]+)",\s*(Public|Operator)\s*,?\s*\)')


def status_routes_ok(fn_props: dict, template_path: str) -> tuple[bool, str]:
    """Every (method, path) in the status function's ROUTES table reaches it through an HttpApi
    event; its events name explicit methods (no ANY); only GET is public-shaped, and POST or
    PATCH events sit under /status/manage/, where the function demands an operator token."""
    import os
    source = os.path.join(os.path.dirname(os.path.abspath(template_path)), STATUS_ROUTES_FILE)
    try:
        with open(source, encoding="utf-8") as f:
            routes = STATUS_ROUTE.findall(f.read())
    except OSError as e:
        return False, f"cannot read {STATUS_ROUTES_FILE}: {e}"
    if not routes:
        return False, f"no routes found in {STATUS_ROUTES_FILE}"
    events = []
    problems = []
    for name, ev in ((fn_props.get("Events")) or {}).items():
        if (ev or {}).get("Type") != "HttpApi":
            continue
        ep = ev.get("Properties") or {}
        method, path = str(ep.get("Method", "")).upper(), str(ep.get("Path", ""))
        if method not in ("GET", "POST", "PATCH"):
            problems.append(f"event {name}: method {method or '<none>'} (GET, POST or PATCH only)")
        if method in ("POST", "PATCH") and not path.startswith("/status/manage/"):
            problems.append(f"event {name}: {method} {path} is outside /status/manage/")
        events.append((method, path))

    def served(method: str, path: str) -> bool:
        for m, p in events:
            if m != method:
                continue
            if p == path or (p.endswith("/{proxy+}") and path.startswith(p[: -len("{proxy+}")])):
                return True
        return False

    for method, path, access in routes:
        if not served(method, path):
            problems.append(f"{method} {path} has no HttpApi event")
        if access == "Public" and method != "GET":
            problems.append(f"{method} {path} is public but not a GET")
        if access == "Operator" and not path.startswith("/status/manage/"):
            problems.append(f"{method} {path} is an operator route outside /status/manage/")
    return not problems, "; ".join(problems)


def policy_ok(fn_props: dict, owned: set[str],
              extra_wildcard: re.Pattern | None = None) -> tuple[bool, str]:
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
            if text == TENANT_KEYS:
                tag = ((st.get("Condition") or {}).get("StringEquals") or {}).get(TENANT_KEY_TAG)
                if not refs(tag) & owned:
                    problems.append(f"{label}: {text} without the condition {TENANT_KEY_TAG} "
                                    "naming this stack's key")
                continue
            if text == "*":
                lowered = {a.lower() for a in actions if isinstance(a, str)}
                if not lowered or not lowered <= UNSCOPED_ACTIONS:
                    problems.append(f"{label}: Resource '*' is only allowed for "
                                    f"{sorted(UNSCOPED_ACTIONS)}, not {actions}")
                continue
            if "*" in text and not SCOPED_WILDCARD.match(text) and not (
                    extra_wildcard and extra_wildcard.match(text)):
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
