"""Creates aloft's AWS resources on a local emulator and prints their exports.

Run by scripts/aws-stack with the virtualenv's python (boto3 comes with moto):

    python scripts/aws_stack.py create --prefix P

It reads AWS_ENDPOINT_URL and AWS_REGION, creates what infra/template.yaml deploys in
the cloud (the table, the three queues with their dead-letter queues, the event bus)
plus a queue P-events that receives every event with source aloft published on the
bus, and prints `export NAME=value` lines for them on stdout. Progress goes to stderr.
Every step first looks at what exists, so running it again changes nothing; queue
attributes are set again each time, so a changed ALOFT_MAX_RECEIVES or
ALOFT_VISIBILITY_TIMEOUT takes effect.
"""

import argparse
import json
import os
import re
import shlex
import sys
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# SQS's largest message: a result carries a task output of up to 256 KiB plus its
# envelope, so the queues take what SQS allows, as infra/template.yaml sets them.
MAX_MESSAGE_BYTES = 1024 * 1024

# The three queues of a run, with the names of their exports.
QUEUES = [("plan", "PLAN"), ("dispatch", "DISPATCH"), ("complete", "COMPLETE")]
GSI = "by_workflow"
TTL_ATTRIBUTE = "expires_at"
# Dead letters are kept as long as SQS allows (14 days), so that a human can look.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def say(message):
    print(f"aws-stack: {message}", file=sys.stderr)


def fail(message):
    say(message)
    sys.exit(1)


def int_setting(name, default, low, high):
    raw = os.environ.get(name, "").strip() or str(default)
    if not re.fullmatch(r"[0-9]+", raw) or not low <= int(raw) <= high:
        fail(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def check_endpoint(url):
    """Refuses anything but an emulator: this script never creates resources in AWS."""
    host = (urlparse(url).hostname or "").lower()
    if not host:
        fail(f"AWS_ENDPOINT_URL has no host: {url!r}")
    if host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws")):
        fail(f"AWS_ENDPOINT_URL {url} is AWS itself: deploy infra/template.yaml instead")


def error_code(error):
    return error.response.get("Error", {}).get("Code", "")


def create_table(dynamodb, name):
    key_schema = [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    gsi_key_schema = [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        dynamodb.create_table(
            TableName=name,
            KeySchema=key_schema,
            AttributeDefinitions=[
                {"AttributeName": attribute, "AttributeType": "S"}
                for attribute in ("pk", "sk", "gsi1pk", "gsi1sk", "active_pk", "active_sk")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": GSI,
                    "KeySchema": gsi_key_schema,
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    # Sparse: only runs not yet settled carry its keys.
                    "IndexName": "active",
                    "KeySchema": [
                        {"AttributeName": "active_pk", "KeyType": "HASH"},
                        {"AttributeName": "active_sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        say(f"created table {name}")
    else:
        # A table of the same name but another shape would fail later in confusing ways.
        indexes = {
            index["IndexName"]: index["KeySchema"]
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        if table["KeySchema"] != key_schema or indexes.get(GSI) != gsi_key_schema:
            fail(f"table {name} exists with other keys or without index {GSI}")

    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") != "ENABLED" or ttl.get("AttributeName") != TTL_ATTRIBUTE:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        say(f"enabled TTL on {name}.{TTL_ATTRIBUTE}")


def ensure_queue(sqs, name, attributes):
    """The queue's URL and ARN; creates it if missing, then sets its attributes."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error_code(error) not in (
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        say(f"created queue {name}")
    else:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def create_queues(sqs, prefix, max_receives, visibility_timeout):
    """The exports of the three queues and their dead-letter queues."""
    exports = {}
    for suffix, export in QUEUES:
        dlq_url, dlq_arn = ensure_queue(
            sqs,
            f"{prefix}-{suffix}-dlq",
            {
                "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
                "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            },
        )
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
        url, _ = ensure_queue(
            sqs,
            f"{prefix}-{suffix}",
            {
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps(redrive),
                "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            },
        )
        exports[f"ALOFT_{export}_QUEUE_URL"] = url
        exports[f"ALOFT_{export}_DLQ_URL"] = dlq_url
    return exports


def create_bus(events, sqs, prefix):
    """The bus, and a rule sending its aloft events to the queue P-events; their exports."""
    bus = f"{prefix}-bus"
    rule = f"{prefix}-lifecycle"
    try:
        events.describe_event_bus(Name=bus)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        events.create_event_bus(Name=bus)
        say(f"created event bus {bus}")

    # put_rule returns the rule's ARN, which the queue policy names, so the queue's
    # policy is set after the rule and before the target.
    rule_arn = events.put_rule(
        Name=rule,
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["aloft"]}),
        State="ENABLED",
        Description="aloft lifecycle events, for tests to read",
    )["RuleArn"]
    url, arn = ensure_queue(sqs, f"{prefix}-events", {})
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "events-send",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    result = events.put_targets(
        Rule=rule, EventBusName=bus, Targets=[{"Id": "events-queue", "Arn": arn}]
    )
    if result.get("FailedEntryCount"):
        fail(f"could not target {prefix}-events from rule {rule}: {result['FailedEntries']}")
    return {"ALOFT_EVENT_BUS": bus, "ALOFT_EVENTS_QUEUE_URL": url}


def create(prefix):
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint:
        fail("AWS_ENDPOINT_URL is not set")
    check_endpoint(endpoint)
    max_receives = int_setting("ALOFT_MAX_RECEIVES", 5, 1, 1000)
    visibility_timeout = int_setting("ALOFT_VISIBILITY_TIMEOUT", 60, 0, 43200)
    region = os.environ.get("AWS_REGION") or "us-east-1"
    session = boto3.session.Session(region_name=region)

    # An emulator answers at once or not at all: fail fast rather than retry for minutes.
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})

    def client(service):
        return session.client(service, endpoint_url=endpoint, config=config)

    create_table(client("dynamodb"), prefix)
    sqs = client("sqs")
    queues = create_queues(sqs, prefix, max_receives, visibility_timeout)
    bus = create_bus(client("events"), sqs, prefix)

    exports = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
        "ALOFT_TABLE": prefix,
    }
    queue_urls = [f"ALOFT_{export}_QUEUE_URL" for _, export in QUEUES]
    dlq_urls = [f"ALOFT_{export}_DLQ_URL" for _, export in QUEUES]
    exports.update((name, queues[name]) for name in queue_urls)
    exports.update(bus)
    exports.update((name, queues[name]) for name in dlq_urls)
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    say(f"{prefix}: table, queues and bus ready at {endpoint}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create_parser = commands.add_parser("create", help="create the resources, print exports")
    create_parser.add_argument("--prefix", default="aloft")
    args = parser.parse_args()

    # Characters every resource name allows; 60 leaves room for "-dispatch-dlq" in a
    # queue name (80 at most). AWS wants table names of 3 or more; moto does not.
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", args.prefix):
        fail(f"--prefix must be 1 to 60 of A-Z a-z 0-9 _ -, not {args.prefix!r}")
    try:
        create(args.prefix)
    except ClientError as error:
        fail(f"{error.operation_name} failed: {error}")
    except BotoCoreError as error:
        fail(str(error))


if __name__ == "__main__":
    main()
