#!/usr/bin/env python3
"""Verifies a Latchkey audit export offline, with the public key alone (Python 3, `cryptography`).

    python3 verify_export.py EXPORT.ndjson PUBLIC_KEY.pem [--now RFC3339]

Checks what Latchkey's own verifier does (`check`, shared/src/domain/audit/verify.rs), without
its code, and names the first break with the same kind:
- sealed entries are numbered 1, 2, 3 ..., each links to the hash of the one before and hashes
  (SHA-256 of the canonical JSON of its other fields) to its `hash` (else broken-chain);
- each entry's event is there (missing-event), under the entry's sort key (moved-event), its
  attributes hashing to the entry's digest (altered-event);
- checkpoints are numbered without gaps (missing-checkpoint), signed by the key (ECDSA P-256,
  SHA-256, over the canonical JSON of every field but `signature`), chained (`previous` is the
  hash of the one before, signature included; `firstSeq` follows its `lastSeq`) and name the
  chain's hash at `lastSeq` (else forged-checkpoint), and sign no entry the chain lacks
  (broken-chain);
- an event no entry covers is pending if younger than `graceSeconds` before --now (default: the
  export's `exportedAt`), else inserted-event; the seal head names the last entry (head-mismatch).
The break at the smallest seq wins; breaks without a seq come after. Prints one JSON report
(tenantId, events, sealed, signedThrough, checkpoints, pending, broken); exits 0 if intact, 1 if
broken, 2 on unusable input (unreadable export, not a P-256 public key).

What it cannot see: the newest entries deleted together with the checkpoints that sign them
leave a shorter log that is still consistent. Only an earlier export shows that: keep the last
export, and check that its last checkpoint is still in the next one, unchanged.
"""
import argparse
import base64
import datetime
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

GENESIS = "0" * 64
ALGORITHM = "ECDSA_P256_SHA256"
ENTRY = ("seq", "id", "sk", "digest", "prev", "hash")
CHECKPOINT = ("tenantId", "number", "firstSeq", "lastSeq", "lastHash", "previous",
              "signedAt", "keyId", "algorithm", "signature")
LINES = {"export": ("tenantId", "exportedAt", "graceSeconds"), "event": ("pk", "sk", "attrs"),
         "entry": ENTRY, "checkpoint": CHECKPOINT, "head": ("seq", "hash")}
INTS = {"seq", "number", "firstSeq", "lastSeq", "graceSeconds"}  # u64 in Rust
LAST = 2**64 - 1  # where breaks without a seq sort: after every entry


class Unusable(Exception):
    pass


def canonical(value):
    # Latchkey's canonical JSON (shared/src/canonical.rs): keys sorted at every depth, no
    # whitespace, strings and numbers as serde_json writes them. Python sorts keys by code
    # point, Rust by UTF-8 bytes: UTF-8 keeps code-point order, so the two agree for every key
    # (UTF-16 order, JCS's, is the one that differs: U+E000-U+FFFF against astral characters).
    # Both escape only '"', '\\' and controls below U+0020 (\b \f \n \r \t, else \u00xx in lower
    # case) and write all else as raw UTF-8. Integers agree within the 64-bit range serde_json
    # reads exactly; floats would not always (1e16 is "1e+16" here, "1e16" there): none are stored.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(value):
    return hashlib.sha256(canonical(value)).hexdigest()


def fields(obj, names, where):
    out = {k: obj.get(k) for k in names}
    for k, v in out.items():
        want = dict if k == "attrs" else int if k in INTS else str
        if not isinstance(v, want) or want is int and not (type(v) is int and 0 <= v <= LAST):
            raise Unusable(f"{where}: {k} is missing or not a {want.__name__}")
    return out


def load(path):
    lines = {kind: [] for kind in LINES}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise Unusable(f"line {n}: not JSON ({e})")
            kind = obj.get("type") if isinstance(obj, dict) else None
            if kind not in LINES or (kind == "export") != (not lines["export"]):
                raise Unusable(f"line {n}: unexpected {kind!r} (the header comes first, once)")
            lines[kind].append(fields(obj, LINES[kind], f"line {n}"))
    if not lines["export"] or len(lines["head"]) > 1:
        raise Unusable("no export header, or more than one head")
    head = lines["head"][0] if lines["head"] else None
    return lines["export"][0], lines["event"], lines["entry"], lines["checkpoint"], head


def load_key(path):
    with open(path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise Unusable(f"{path}: not a P-256 public key")
    return key


def unix_ms(text):
    t = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    if t.tzinfo is None:
        raise Unusable(f"{text}: no time zone")
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (t - epoch) // datetime.timedelta(milliseconds=1)


def sk_ms(sk):
    # The sort key's time as Rust reads it: after "EV#", an i128 up to the next '#'.
    m = re.match(r"EV#([+-]?[0-9]+)(?:#|\Z)", sk)
    return int(m.group(1)) if m and -2**127 <= int(m.group(1)) < 2**127 else None


def signed(key, cp, tenant):
    if cp["algorithm"] != ALGORITHM or cp["tenantId"] != tenant:
        return False
    body = {k: v for k, v in cp.items() if k != "signature"}
    try:
        sig = base64.b64decode(cp["signature"], validate=True)
        if base64.b64encode(sig).decode() != cp["signature"]:
            return False  # canonical padded base64 only, as Rust's decoder takes it
        key.verify(sig, canonical(body), ec.ECDSA(hashes.SHA256()))
        return True
    except (ValueError, InvalidSignature):
        return False


def check(header, events, entries, checkpoints, head, key, now_ms):
    tenant = header["tenantId"]
    report = {"tenantId": tenant, "events": len(events), "sealed": len(entries),
              "signedThrough": 0, "checkpoints": len(checkpoints), "pending": 0, "broken": None}
    breaks = []  # (the seq it concerns, the break), in the order found

    def add(at, kind, reason, seq=None, checkpoint=None, event_id=None):
        b = {"kind": kind, "seq": seq, "checkpoint": checkpoint, "eventId": event_id}
        breaks.append((at, {**{k: v for k, v in b.items() if v is not None}, "reason": reason}))

    by_id = {e["attrs"]["id"]: e for e in events if isinstance(e["attrs"].get("id"), str)}
    hashes, prev = [], GENESIS
    for seq, e in enumerate(entries, 1):
        if e["seq"] != seq:
            reason = "an entry is missing, inserted or out of order in the sealed chain"
        elif e["prev"] != prev:
            reason = "the entry does not link to the one before it"
        elif sha256({k: e[k] for k in ENTRY if k != "hash"}) != e["hash"]:
            reason = "the sealed entry was altered"
        else:
            reason = None
        if reason:
            add(seq, "broken-chain", reason, seq=seq)
            break
        prev = e["hash"]
        hashes.append(prev)
        event = by_id.get(e["id"])
        if event is None:
            kind, reason = "missing-event", "the event was deleted from the log"
        elif event["sk"] != e["sk"]:
            kind, reason = "moved-event", "the event's time or order was changed after sealing"
        elif sha256(event["attrs"]) != e["digest"]:
            kind, reason = "altered-event", "the event's contents were changed after sealing"
        else:
            continue
        add(seq, kind, reason, seq=seq, event_id=e["id"])
        break

    prev_hash, prev_last = GENESIS, 0
    for number, cp in enumerate(checkpoints, 1):
        last = cp["lastSeq"]
        forged = "forged-checkpoint"
        if cp["number"] != number:
            kind, reason = "missing-checkpoint", "checkpoint numbers skip"
        elif not signed(key, cp, tenant):
            kind, reason = forged, "the checkpoint's signature does not verify under the public key"
        elif cp["previous"] != prev_hash or cp["firstSeq"] != prev_last + 1:
            kind, reason = forged, "the checkpoint does not follow the one before it"
        elif last > len(hashes) and not breaks:
            kind = "broken-chain"
            reason = "a checkpoint signs entries that are no longer in the sealed chain"
        elif 1 <= last <= len(hashes) and hashes[last - 1] != cp["lastHash"]:
            kind, reason = forged, "the checkpoint signs another chain than the stored one"
        else:
            report["signedThrough"], prev_hash, prev_last = last, sha256(cp), last
            continue
        at = len(hashes) + 1 if kind == "broken-chain" else max(cp["firstSeq"], 1)
        add(at, kind, reason, seq=at, checkpoint=number)
        break

    sealed = {e["id"] for e in entries}
    cutoff = now_ms - header["graceSeconds"] * 1000
    for event in events:
        id_ = event["attrs"].get("id")
        if not isinstance(id_, str) or id_ in sealed:
            continue
        ms = sk_ms(event["sk"])
        if ms is not None and ms >= cutoff:
            report["pending"] += 1
        elif not any(at == LAST for at, _ in breaks):
            reason = "an event older than the grace period that no seal covers"
            add(LAST, "inserted-event", reason, event_id=id_)

    if not breaks:
        seq, hash_ = (head["seq"], head["hash"]) if head else (0, GENESIS)
        if seq != len(hashes) or hash_ != (hashes[-1] if hashes else GENESIS):
            add(LAST, "head-mismatch", "the seal head does not name the last sealed entry")
    report["broken"] = min(breaks, key=lambda b: b[0])[1] if breaks else None
    return report


def main():
    p = argparse.ArgumentParser(description="Verifies a Latchkey audit export offline.")
    p.add_argument("export")
    p.add_argument("public_key")
    p.add_argument("--now", help="RFC 3339 (default: the export's exportedAt)")
    args = p.parse_args()
    try:
        evidence = load(args.export)
        key = load_key(args.public_key)
        report = check(*evidence, key, unix_ms(args.now or evidence[0]["exportedAt"]))
        print(json.dumps(report, ensure_ascii=False))
    except (Unusable, OSError, ValueError, UnsupportedAlgorithm) as e:
        print(f"verify_export: unusable input: {e}", file=sys.stderr)
        return 2
    return 1 if report["broken"] else 0


if __name__ == "__main__":
    sys.exit(main())
