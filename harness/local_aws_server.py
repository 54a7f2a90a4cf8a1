"""The local AWS services of one run: moto in server mode, in a process of its own.

`python -m harness.local_aws_server` reads its seed as the first JSON line on stdin, starts
moto's server on 127.0.0.1 (a free port), creates what the seed names (DynamoDB tables with
their items, S3 buckets with their objects, SSM parameters) and answers
`{"ready": {"port": N}}`, or `{"error": "..."}` when the seed cannot be applied. Each later
line `{"op": "dynamodb"}` is answered with every table's items; end of input stops it.
"""
from __future__ import annotations

import base64
import json
import sys
from decimal import Decimal
from pathlib import Path

CREDENTIALS = {"aws_access_key_id": "sip-harness-local", "aws_secret_access_key": "sip-harness-local"}


def _clients(endpoint: str, region: str):
    import boto3
    session = boto3.session.Session(region_name=region, **CREDENTIALS)
    return {name: session.client(name, endpoint_url=endpoint) for name in ("dynamodb", "s3", "ssm")}


def seed(clients, plan: dict) -> None:
    """Create the tables, buckets and parameters of `plan` (see LocalAwsConfig.seed)."""
    from boto3.dynamodb.types import TypeSerializer
    serialize = TypeSerializer().serialize
    dynamodb, s3, ssm = clients["dynamodb"], clients["s3"], clients["ssm"]
    for table in plan.get("dynamodb", []):
        indexes = table.get("indexes", {})
        attributes = dict(table["key"])
        for key in indexes.values():
            attributes.update(dict(key))
        extra = {"GlobalSecondaryIndexes": [
            {"IndexName": name, "KeySchema": _key_schema(key), "Projection": {"ProjectionType": "ALL"}}
            for name, key in indexes.items()]} if indexes else {}
        dynamodb.create_table(
            TableName=table["name"], BillingMode="PAY_PER_REQUEST", KeySchema=_key_schema(table["key"]),
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
            **extra)
        for item in table["items"]:
            item = json.loads(json.dumps(item), parse_float=Decimal)
            dynamodb.put_item(TableName=table["name"],
                              Item={k: serialize(v) for k, v in item.items()})
    for bucket in plan.get("s3", []):
        extra = {} if plan["region"] == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": plan["region"]}}
        s3.create_bucket(Bucket=bucket["name"], **extra)
        for obj in bucket["objects"]:
            body = Path(obj["file"]).read_bytes() if obj.get("file") else obj["body"].encode()
            s3.put_object(Bucket=bucket["name"], Key=obj["key"], Body=body)
    for parameter in plan.get("ssm", []):
        ssm.put_parameter(Name=parameter["name"], Value=parameter["value"],
                          Type=parameter["type"], Overwrite=True)


def _key_schema(key: list) -> list[dict]:
    """[[partition, type], [sort, type]] as DynamoDB's KeySchema."""
    return [{"AttributeName": name, "KeyType": role} for (name, _), role in zip(key, ("HASH", "RANGE"))]


def _plain(value):
    """A DynamoDB value as JSON: numbers as int or float, sets as sorted lists, binary as base64."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return base64.b64encode(value.value).decode()
    return value


def dynamodb_tables(dynamodb) -> dict[str, list[dict]]:
    """Every table's items, in key order."""
    from boto3.dynamodb.types import TypeDeserializer
    deserialize = TypeDeserializer().deserialize
    out = {}
    for name in dynamodb.get_paginator("list_tables").paginate().build_full_result()["TableNames"]:
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]]
        items = [{k: _plain(deserialize(v)) for k, v in raw.items()} for page in
                 dynamodb.get_paginator("scan").paginate(TableName=name) for raw in page["Items"]]
        out[name] = sorted(items, key=lambda item: [str(item.get(k)) for k in keys])
    return out


def main() -> int:
    plan = json.loads(sys.stdin.readline())
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        clients = _clients(f"http://{host}:{port}", plan["region"])
        try:
            seed(clients, plan)
        except Exception as exc:  # the seed's own fault, in the service's words
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            return 1
        print(json.dumps({"ready": {"port": port}}), flush=True)
        for line in sys.stdin:
            if json.loads(line).get("op") == "dynamodb":
                print(json.dumps({"tables": dynamodb_tables(clients["dynamodb"])}), flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
