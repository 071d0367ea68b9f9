#!/usr/bin/env python3
"""An independent Confluent wire-format peer for flowodm's interop tests.

It produces and consumes Avro values with confluent-kafka's own serdes (``AvroSerializer`` and
``AvroDeserializer``, fastavro underneath) and the Schema Registry client of the same package,
so nothing flowodm wrote takes part on this side.

    peer.py produce --topic T --subject S --schema FILE --records JSONL
    peer.py consume --topic T --count N --group G

``produce`` registers FILE's schema under subject S (``auto.register.schemas`` on,
``use.latest.version`` off) and sends each line of JSONL as one message. ``consume`` reads N
messages from the beginning of T, each with the writer's schema fetched by the id in its header,
and prints each value as one JSON line. The broker and registry come from
``KAFKA_BOOTSTRAP_SERVERS`` and ``SCHEMA_REGISTRY_URL`` (or ``--bootstrap-servers`` and
``--registry-url``). Any error or timeout (``--timeout``, default 60 s) ends the run with a
message on stderr and exit status 1.

JSON convention, fixed by the Avro type and the same in both directions:

    null, boolean, int, long, string   JSON null, true/false, integer, string
    float, double                      number; NaN and infinities as "NaN", "Infinity", "-Infinity"
    bytes, fixed                       base64 (standard alphabet, padded)
    enum                               the symbol
    array, map, record                 array, object, object (a record by field name)
    union of null and one type         null, or the value as that type
    any other union                    null, or {"BRANCH": value}, BRANCH being the full name of a
                                       named type and the type name otherwise ("long", "array")
    timestamp-millis, -micros          "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC)
    local-timestamp-millis, -micros    "YYYY-MM-DDTHH:MM:SS.ffffff"
    date                               "YYYY-MM-DD"
    time-millis, time-micros           "HH:MM:SS.ffffff"
    uuid                               lower-case hyphenated string
    decimal                            plain decimal string with exactly `scale` fractional digits

The logical types go through the Python objects fastavro makes of them (datetime, date, time,
UUID, Decimal), so a consumed value shows how confluent-kafka understood it, not just the number
on the wire.
"""

import argparse
import base64
import datetime
import decimal
import json
import math
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
NAMED = {"record", "error", "enum", "fixed"}
UTC = datetime.timezone.utc


class PeerError(Exception):
    """An error to report on stderr and exit 1 with."""


def full_name(name, namespace):
    return name if "." in name or not namespace else f"{namespace}.{name}"


def own_namespace(named_type, enclosing):
    """The namespace of a named type's definition (and of the names used inside it)."""
    name = named_type["name"]
    if "." in name:
        return name.rpartition(".")[0]
    return named_type.get("namespace", enclosing) or ""


class Types:
    """A schema's named types, to follow references while walking a value with its schema."""

    def __init__(self, schema):
        self.named = {}
        self._collect(schema, "")

    def _collect(self, s, ns):
        if isinstance(s, list):
            for branch in s:
                self._collect(branch, ns)
        elif isinstance(s, dict):
            t = s["type"]
            if t in NAMED:
                ns = own_namespace(s, ns)
                self.named[full_name(s["name"], ns)] = (s, ns)
                for f in s.get("fields", []):
                    self._collect(f["type"], ns)
            elif t == "array":
                self._collect(s["items"], ns)
            elif t == "map":
                self._collect(s["values"], ns)
            elif isinstance(t, (dict, list)):
                self._collect(t, ns)

    def resolve(self, s, ns):
        """The definition of `s` (a reference is replaced) and the namespace inside it."""
        if isinstance(s, str) and s not in PRIMITIVES:
            # A short name resolves in the enclosing namespace; like Java's parser, fall back to
            # the null namespace (fastavro has parsed and accepted the schema before this runs).
            for candidate in (full_name(s, ns), s):
                if candidate in self.named:
                    return self.named[candidate]
            raise PeerError(f"unknown type {s!r} in namespace {ns!r}")
        if isinstance(s, dict):
            t = s["type"]
            if not isinstance(t, str) or t not in PRIMITIVES | NAMED | {"array", "map"}:
                return self.resolve(t, ns)  # {"type": <schema or reference>}
            if t in NAMED:
                return s, own_namespace(s, ns)
        return s, ns

    def branch_name(self, s, ns):
        """How a union names the branch `s`: full name of a named type, else the type name."""
        s, inner = self.resolve(s, ns)
        if isinstance(s, str):
            return s
        return full_name(s["name"], inner) if s["type"] in NAMED else s["type"]


def kind(s):
    """(type, logicalType) of a resolved schema."""
    if isinstance(s, str):
        return s, None
    if isinstance(s, list):
        return "union", None
    return s["type"], s.get("logicalType")


def iso_time(t):
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"


def iso_datetime(d):
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{iso_time(d)}"


def to_json(types, s, v, ns=""):
    """A value as fastavro returned it, in the JSON convention of the module docs."""
    s, ns = types.resolve(s, ns)
    t, logical = kind(s)
    if t == "union":
        return union_to_json(types, s, v, ns)
    if v is None:
        return None
    if logical in ("timestamp-millis", "timestamp-micros"):
        return iso_datetime(v.astimezone(UTC)) + "Z"
    if logical in ("local-timestamp-millis", "local-timestamp-micros"):
        return iso_datetime(v)
    if logical == "date":
        return v.isoformat()
    if logical in ("time-millis", "time-micros"):
        return iso_time(v)
    if logical == "uuid":
        return str(v)
    if logical == "decimal":
        return format(v, "f")
    if t in ("bytes", "fixed"):
        return base64.b64encode(v).decode("ascii")
    if t in ("float", "double") and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if t == "array":
        return [to_json(types, s["items"], x, ns) for x in v]
    if t == "map":
        return {k: to_json(types, s["values"], x, ns) for k, x in v.items()}
    if t in ("record", "error"):
        return {f["name"]: to_json(types, f["type"], v[f["name"]], ns) for f in s["fields"]}
    return v


def union_to_json(types, branches, v, ns):
    # The deserializer runs with return_record_name, so a record read from a union comes back as
    # (full name, fields); every other branch has to be recognized by its Python value. Branches
    # that fastavro returns as the same Python type (int and long, string and enum, bytes and
    # fixed) cannot be told apart here: the first one is reported.
    if v is None:
        return None
    non_null = [b for b in branches if b != "null"]
    if isinstance(v, tuple):
        name, v = v
        chosen = next((b for b in non_null if types.branch_name(b, ns) == name), None)
    else:
        chosen = next((b for b in non_null if fits(types, b, v, ns)), None)
    if chosen is None:
        raise PeerError(f"no branch of union {branches} holds {v!r}")
    value = to_json(types, chosen, v, ns)
    return value if len(non_null) == 1 else {types.branch_name(chosen, ns): value}


def fits(types, s, v, ns):
    """Whether a value fastavro returned can come from the non-record schema `s`."""
    s, _ = types.resolve(s, ns)
    t, logical = kind(s)
    if logical in ("timestamp-millis", "timestamp-micros"):
        return isinstance(v, datetime.datetime) and v.tzinfo is not None
    if logical in ("local-timestamp-millis", "local-timestamp-micros"):
        return isinstance(v, datetime.datetime) and v.tzinfo is None
    if logical == "date":
        return isinstance(v, datetime.date) and not isinstance(v, datetime.datetime)
    if logical in ("time-millis", "time-micros"):
        return isinstance(v, datetime.time)
    if logical == "uuid":
        return isinstance(v, uuid.UUID)
    if logical == "decimal":
        return isinstance(v, decimal.Decimal)
    return {
        "boolean": lambda: isinstance(v, bool),
        "int": lambda: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda: isinstance(v, float),
        "double": lambda: isinstance(v, float),
        "string": lambda: isinstance(v, str),
        "enum": lambda: isinstance(v, str) and v in s["symbols"],
        "bytes": lambda: isinstance(v, bytes),
        "fixed": lambda: isinstance(v, bytes) and len(v) == s["size"],
        "array": lambda: isinstance(v, list),
        "map": lambda: isinstance(v, dict),
    }.get(t, lambda: False)()


def from_json(types, s, v, ns=""):
    """A JSON value in the module's convention, as the Python value AvroSerializer takes."""
    s, ns = types.resolve(s, ns)
    t, logical = kind(s)
    if t == "union":
        if v is None:
            return None
        non_null = [b for b in s if b != "null"]
        if len(non_null) == 1:
            return from_json(types, non_null[0], v, ns)
        if not (isinstance(v, dict) and len(v) == 1):
            raise PeerError(f"a value of union {s} must be null or {{branch: value}}, not {v!r}")
        [(name, inner)] = v.items()
        chosen = next((b for b in non_null if types.branch_name(b, ns) == name), None)
        if chosen is None:
            raise PeerError(f"union {s} has no branch {name!r}")
        # fastavro's tuple notation names the branch to write.
        return (name, from_json(types, chosen, inner, ns))
    if logical in ("timestamp-millis", "timestamp-micros"):
        if not v.endswith("Z"):
            raise PeerError(f"a timestamp must be UTC (end in Z): {v!r}")
        # Aware, on purpose: fastavro converts a naive datetime for timestamp-* with
        # time.mktime, in the machine's local time zone. It also truncates sub-millisecond
        # digits for timestamp-millis, like flowodm.
        return datetime.datetime.fromisoformat(v[:-1]).replace(tzinfo=UTC)
    if logical in ("local-timestamp-millis", "local-timestamp-micros"):
        return datetime.datetime.fromisoformat(v)
    if logical == "date":
        return datetime.date.fromisoformat(v)
    if logical in ("time-millis", "time-micros"):
        return datetime.time.fromisoformat(v)
    if logical == "uuid":
        return uuid.UUID(v)
    if logical == "decimal":
        # fastavro writes the unscaled value in (bit_length + 8) // 8 bytes, which for some
        # negative values is one more than the minimal two's complement (-1.28 at scale 2 is
        # ff 80): a valid encoding that readers must accept.
        return decimal.Decimal(v)
    if t in ("bytes", "fixed"):
        return base64.b64decode(v, validate=True)
    if t in ("float", "double"):
        return float(v)
    if t == "array":
        return [from_json(types, s["items"], x, ns) for x in v]
    if t == "map":
        return {k: from_json(types, s["values"], x, ns) for k, x in v.items()}
    if t in ("record", "error"):
        return {
            f["name"]: from_json(types, f["type"], v[f["name"]], ns)
            for f in s["fields"]
            if f["name"] in v
        }
    return v


def registry(args):
    return SchemaRegistryClient({"url": args.registry_url})


def produce(args):
    with open(args.schema, encoding="utf-8") as f:
        schema_str = f.read()
    try:
        types = Types(json.loads(schema_str))
        serializer = AvroSerializer(
            registry(args),
            schema_str,
            conf={
                "auto.register.schemas": True,
                "use.latest.version": False,
                "subject.name.strategy": lambda ctx, record_name: args.subject,
            },
        )
    except Exception as e:
        raise PeerError(f"{args.schema}: not a schema confluent-kafka accepts: {e!r}") from e
    producer = Producer({"bootstrap.servers": args.bootstrap_servers, "acks": "all"})
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(f"delivery to {msg.topic()} failed: {err}")

    ctx = SerializationContext(args.topic, MessageField.VALUE)
    with open(args.records, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    for n, line in enumerate(lines, 1):
        try:
            value = from_json(types, json.loads(schema_str), json.loads(line))
            payload = serializer(value, ctx)
        except Exception as e:
            raise PeerError(f"{args.records}:{n}: cannot serialize: {e!r}") from e
        producer.produce(args.topic, value=payload, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(args.timeout)
    if left:
        raise PeerError(f"{left} of {len(lines)} messages not delivered within {args.timeout} s")
    if failures:
        raise PeerError("; ".join(failures))
    print(f"peer: produced {len(lines)} records to {args.topic}", file=sys.stderr)


def consume(args):
    client = registry(args)
    deserializer = AvroDeserializer(
        client, return_record_name=True, conf={"use.latest.version": False}
    )
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    deadline = time.monotonic() + args.timeout
    seen = 0
    try:
        consumer.subscribe([args.topic])
        while seen < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PeerError(
                    f"timed out after {args.timeout} s with {seen} of {args.count} messages "
                    f"from {args.topic}"
                )
            msg = consumer.poll(min(left, 1.0))
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            data = msg.value()
            if not data or data[0] != 0 or len(data) < 5:
                raise PeerError(f"offset {msg.offset()}: not in the Confluent wire format: {data!r}")
            ctx = SerializationContext(msg.topic(), MessageField.VALUE, msg.headers())
            try:
                value = deserializer(data, ctx)
                writer = json.loads(client.get_schema(int.from_bytes(data[1:5], "big")).schema_str)
                types = Types(writer)
                out = to_json(types, writer, value)
            except Exception as e:
                raise PeerError(f"offset {msg.offset()}: cannot deserialize: {e!r}") from e
            print(json.dumps(out, allow_nan=False), flush=True)
            seen += 1
    finally:
        consumer.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    p.add_argument("--registry-url", default=os.environ.get("SCHEMA_REGISTRY_URL"))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at most")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("produce", help="serialize JSON lines with AvroSerializer and send them")
    pr.add_argument("--topic", required=True)
    pr.add_argument("--subject", required=True)
    pr.add_argument("--schema", required=True, help="Avro schema (.avsc) file")
    pr.add_argument("--records", required=True, help="one JSON value per line")
    co = sub.add_parser("consume", help="read messages with AvroDeserializer, print JSON lines")
    co.add_argument("--topic", required=True)
    co.add_argument("--count", type=int, required=True)
    co.add_argument("--group", required=True)
    args = p.parse_args(argv)
    try:
        if not args.bootstrap_servers:
            raise PeerError("no broker: set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap-servers")
        if not args.registry_url:
            raise PeerError("no registry: set SCHEMA_REGISTRY_URL or pass --registry-url")
        produce(args) if args.command == "produce" else consume(args)
    except Exception as e:  # every failure is one line on stderr and exit status 1
        print(f"peer: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
