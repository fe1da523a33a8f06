#!/usr/bin/env python3
"""Checks that the CDK construct (infra/cdk) and the SAM template (infra/template.yaml)
describe the same resources.

    compare_templates.py [--sam infra/template.yaml] [--cdk target/cdk/aloft.template.json]
                         [--param NAME=VALUE ...]

The SAM template is transformed to plain CloudFormation with samtranslator (offline: the
AWS managed policies it may name are given as a fixed map), and resolved with its
parameters' defaults (or --param values); the CDK template is the one `scripts/cdk-synth`
writes, synthesized with the construct's defaults. Both are brought to one form:

* pseudo parameters take fixed values (account 123456789012, us-east-1, aws), parameters
  their values, conditions are evaluated, and Fn::If, Fn::Sub, Fn::Join, Fn::Select and
  Fn::Split are worked out; a resource whose condition is false is dropped;
* a reference to a resource (Ref, Fn::GetAtt) becomes `{Name}` or `{Name.Attr}`, where
  Name is the SAM logical id, and for a CDK resource the id of its construct (the last
  part of its aws:cdk:path other than `Resource`): the construct uses SAM's logical ids
  as construct ids, so the two pair up by name; a queue's ARN is spelled out from its
  name, as SAM's SQSSendMessagePolicy writes it.

Then, per resource type, the number of resources and their names must agree, and so must
the key properties of each pair (see FACETS) and the templates' outputs. On a mismatch it
prints each difference and exits 1; otherwise it prints one line.

Differences it allows, each on purpose (ALLOWED below prints them with --explain):
the template sections Parameters, Rules, Conditions, Metadata, Description, Transform and
Globals (SAM parameters are the construct's typed props; the CDK default synthesizer adds
the BootstrapVersion parameter and the CheckBootstrapVersion rule); per resource only the
facets listed are compared, so Code (CodeUri vs a CDK asset), Metadata, DependsOn, Tags
(SAM tags its functions and roles lambda:createdBy=SAM), policy names and a managed
policy's Path are not. No CDK-only resource type is allowed: CDKMetadata must be left out
(`cdk synth --no-version-reporting`), and log retention must be a Logs::LogGroup, not
CDK's log-retention custom resource.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK_NAME = "{AWS::StackName}"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": "{AWS::StackId}",
    "AWS::NotificationARNs": "{AWS::NotificationARNs}",
}

# The AWS managed policies the SAM template may name, for samtranslator's policy loader
# (which would otherwise ask IAM), and the actions each allows (on "*"), to tell which
# actions a role is allowed in all.
AWS_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    ),
    "AWSLambdaSQSQueueExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ],
    ),
}

ALLOWED = [
    ("template section Parameters", "SAM parameters are the construct's typed props; the "
     "CDK default synthesizer adds BootstrapVersion"),
    ("template section Rules", "the CDK default synthesizer's CheckBootstrapVersion"),
    ("template sections Conditions, Metadata, Description, Transform, Globals",
     "evaluated or merged before comparing, or descriptive only"),
    ("Lambda Code", "SAM's CodeUri names the zips of scripts/package, which sam deploy uploads; CDK stages the same zips as assets"),
    ("resource Metadata, DependsOn", "tooling data and ordering only"),
    ("Tags", "SAM tags its functions and roles lambda:createdBy=SAM"),
    ("IAM PolicyName, ManagedPolicy Path", "names of inline policies; Path / is the default"),
    ("statement grouping", "IAM grants are compared as (effect, action, resource) "
     "triples, however the statements group them"),
]


class Mismatch(Exception):
    pass


# --- loading ---------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: Loader, suffix: str, node: Any) -> dict[str, Any]:
        name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", construct)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader)  # noqa: S506 (a SafeLoader subclass)


def transform_sam(template: dict[str, Any]) -> dict[str, Any]:
    """The SAM template as plain CloudFormation, without any AWS call."""
    # boto3 (inside samtranslator) must not read the machine's AWS files.
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    # CodeUri names a local zip that `sam deploy` uploads: any S3 location
    # does for the transform, and the code is not compared.
    for section in (template.get("Globals", {}).get("Function", {}),) + tuple(
        r.get("Properties", {})
        for r in template.get("Resources", {}).values()
        if r.get("Type") == "AWS::Serverless::Function"
    ):
        if "CodeUri" in section:
            section["CodeUri"] = "s3://placeholder/code.zip"

    policy_map = {name: arn for name, (arn, _) in AWS_MANAGED_POLICIES.items()}
    session = boto3.session.Session(region_name=REGION)
    translator = Translator(None, Parser(), boto_session=session)
    try:
        return translator.translate(
            template,
            parameter_values={"AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION},
            get_managed_policy_map=lambda: policy_map,
        )
    except InvalidDocumentException as error:
        causes = "; ".join(str(cause) for cause in error.causes)
        raise Mismatch(f"samtranslator rejected the SAM template: {causes}") from error


# --- normal form -----------------------------------------------------------------------

NOVALUE = object()


class View:
    """One template with parameters, conditions and references resolved."""

    def __init__(self, label: str, template: dict[str, Any], names: dict[str, str],
                 params: dict[str, str]):
        self.label = label
        self.template = template
        self.names = names  # logical id -> comparable name
        self.types = {
            names[lid]: r["Type"] for lid, r in template.get("Resources", {}).items()
        }
        self.params: dict[str, Any] = {}
        for name, decl in template.get("Parameters", {}).items():
            if name in params:
                value: Any = params[name]
            elif "Default" in decl:
                value = decl["Default"]
            else:
                continue
            if decl.get("Type") == "CommaDelimitedList" or str(decl.get("Type", "")).startswith("List<"):
                value = [part.strip() for part in str(value).split(",")] if isinstance(value, str) else value
            else:
                value = scalar(value)
            self.params[name] = value
        unknown = set(params) - set(template.get("Parameters", {}))
        if unknown:
            raise Mismatch(f"{label}: no parameter {', '.join(sorted(unknown))}")
        self.condition_values: dict[str, bool] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        for lid, resource in template.get("Resources", {}).items():
            condition = resource.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            self.resources[names[lid]] = {
                "Type": resource["Type"],
                "Properties": self.canon(resource.get("Properties", {})),
                "DeletionPolicy": resource.get("DeletionPolicy", "Delete"),
                "UpdateReplacePolicy": resource.get("UpdateReplacePolicy", "Delete"),
            }
        self.outputs: dict[str, Any] = {}
        for name, output in template.get("Outputs", {}).items():
            condition = output.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            export = output.get("Export", {}).get("Name")
            self.outputs[name] = {
                "Value": self.canon(output.get("Value")),
                "Export": self.canon(export) if export is not None else None,
            }

    def condition(self, name: str) -> bool:
        if name not in self.condition_values:
            declared = self.template.get("Conditions", {})
            if name not in declared:
                raise Mismatch(f"{self.label}: no condition {name}")
            self.condition_values[name] = self.evaluate(declared[name])
        return self.condition_values[name]

    def evaluate(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            (key, arg), = expression.items()
            if key == "Fn::Equals":
                return self.canon(arg[0]) == self.canon(arg[1])
            if key == "Fn::Not":
                return not self.evaluate(arg[0])
            if key == "Fn::And":
                return all(self.evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(self.evaluate(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        raise Mismatch(f"{self.label}: cannot evaluate condition {expression!r}")

    def ref(self, target: str) -> Any:
        if target in PSEUDO:
            return PSEUDO[target]
        if target == "AWS::NoValue":
            return NOVALUE
        if target in self.params:
            return self.params[target]
        if target in self.names:
            return "{" + self.names[target] + "}"
        raise Mismatch(f"{self.label}: Ref to unknown {target}")

    def get_att(self, target: str, attribute: str) -> str:
        if target not in self.names:
            raise Mismatch(f"{self.label}: Fn::GetAtt of unknown {target}")
        name = self.names[target]
        if attribute == "Arn" and self.types.get(name) == "AWS::SQS::Queue":
            # What SAM's SQSSendMessagePolicy writes for a queue's ARN.
            return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{{{name}.QueueName}}"
        return "{" + name + "." + attribute + "}"

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return text_of(self.canon(variables[inner]))
            if "." in inner and inner.split(".", 1)[0] in self.names:
                return self.get_att(*inner.split(".", 1))
            return text_of(self.ref(inner))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def canon(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.canon(v) for v in value]
            return [v for v in items if v is not NOVALUE]
        if not isinstance(value, dict):
            return scalar(value)
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                return self.sub(arg[0], arg[1])
            if key == "Fn::Join":
                parts = self.canon(arg[1])
                if not isinstance(parts, list):
                    raise Mismatch(f"{self.label}: cannot join {arg!r}")
                return str(arg[0]).join(text_of(p) for p in parts)
            if key == "Fn::If":
                branch = arg[1] if self.condition(arg[0]) else arg[2]
                return self.canon(branch)
            if key == "Fn::Split":
                return text_of(self.canon(arg[1])).split(arg[0])
            if key == "Fn::Select":
                items = self.canon(arg[1])
                return items[int(self.canon(arg[0]))]
            if key.startswith("Fn::"):
                return {key: self.canon(arg)}
        out = {}
        for key, item in value.items():
            item = self.canon(item)
            if item is not NOVALUE:
                out[key] = item
        return out


def scalar(value: Any) -> Any:
    """Numbers, booleans and strings compared by their text, as CloudFormation does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return value


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def cdk_names(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> the id of the construct that made the resource."""
    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for lid, resource in template.get("Resources", {}).items():
        path = resource.get("Metadata", {}).get("aws:cdk:path")
        if not path:
            raise Mismatch(f"CDK resource {lid} has no aws:cdk:path metadata "
                           "(synthesize with path metadata on)")
        parts = [p for p in path.split("/")[1:] if p not in ("Resource", "Default")]
        name = parts[-1] if parts else lid
        if name in taken:
            raise Mismatch(f"CDK resources {taken[name]} and {lid} both map to {name}")
        taken[name] = lid
        names[lid] = name
    return names


# --- facets ----------------------------------------------------------------------------


def get(props: dict[str, Any], dotted: str) -> Any:
    value: Any = props
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def grants(document: Any) -> list[str]:
    """A policy document as sorted 'Effect action resource [condition]' lines."""
    lines = set()
    for statement in as_list(get(document or {}, "Statement")):
        condition = statement.get("Condition")
        suffix = f" if {text_of(condition)}" if condition else ""
        for action in as_list(statement.get("Action")):
            for resource in as_list(statement.get("Resource")) or ["-"]:
                lines.add(f"{statement.get('Effect')} {action} on {text_of(resource)}{suffix}")
    return sorted(lines)


def trust(document: Any) -> list[str]:
    lines = set()
    for statement in as_list(get(document or {}, "Statement")):
        principal = statement.get("Principal", {})
        principal = {k: sorted(as_list(v)) for k, v in principal.items()} if isinstance(principal, dict) else principal
        condition = statement.get("Condition")
        for action in as_list(statement.get("Action")):
            lines.add(f"{statement.get('Effect')} {action} by {text_of(principal)}"
                      + (f" if {text_of(condition)}" if condition else ""))
    return sorted(lines)


def sorted_by(key: str):
    def sort(value: Any) -> Any:
        return sorted(as_list(value), key=lambda item: text_of(item.get(key) if isinstance(item, dict) else item))
    return sort


def index_facets(value: Any) -> Any:
    return [
        {"IndexName": i.get("IndexName"), "KeySchema": i.get("KeySchema"),
         "Projection": i.get("Projection")}
        for i in sorted_by("IndexName")(value)
    ]


def env_names(value: Any) -> Any:
    return sorted((value or {}).keys())


def role_actions(view: View, props: dict[str, Any]) -> list[str]:
    """Every action the role is allowed: inline policies and attached managed ones."""
    actions = set()
    for policy in as_list(props.get("Policies")):
        for statement in as_list(get(policy, "PolicyDocument.Statement")):
            if statement.get("Effect") == "Allow":
                actions.update(as_list(statement.get("Action")))
    by_arn = {arn: acts for arn, acts in AWS_MANAGED_POLICIES.values()}
    for arn in as_list(props.get("ManagedPolicyArns")):
        if arn in by_arn:
            actions.update(by_arn[arn])
        elif isinstance(arn, str) and arn.startswith("{") and arn.strip("{}") in view.resources:
            managed = view.resources[arn.strip("{}")]["Properties"]
            for statement in as_list(get(managed, "PolicyDocument.Statement")):
                if statement.get("Effect") == "Allow":
                    actions.update(as_list(statement.get("Action")))
        else:
            actions.add(f"<unknown managed policy {text_of(arn)}>")
    return sorted(actions)


# Per resource type: facet name -> property path, or a function of (view, properties).
FACETS: dict[str, dict[str, Any]] = {
    "AWS::Lambda::Function": {
        "FunctionName": "FunctionName",
        "Description": "Description",
        "Runtime": "Runtime",
        "Architectures": "Architectures",
        "Handler": "Handler",
        "MemorySize": "MemorySize",
        "Timeout": "Timeout",
        "Role": "Role",
        "Environment variable names": ("Environment.Variables", env_names),
        "Environment variables": "Environment.Variables",
        "LoggingConfig.LogFormat": "LoggingConfig.LogFormat",
        "LoggingConfig.LogGroup": "LoggingConfig.LogGroup",
        "RecursiveLoop": "RecursiveLoop",
        "ReservedConcurrentExecutions": "ReservedConcurrentExecutions",
        "DeadLetterConfig": "DeadLetterConfig",
        "VpcConfig": "VpcConfig",
    },
    "AWS::SQS::Queue": {
        "VisibilityTimeout": "VisibilityTimeout",
        "MessageRetentionPeriod": "MessageRetentionPeriod",
        "MaximumMessageSize": "MaximumMessageSize",
        "SqsManagedSseEnabled": "SqsManagedSseEnabled",
        "KmsMasterKeyId": "KmsMasterKeyId",
        "RedrivePolicy.deadLetterTargetArn": "RedrivePolicy.deadLetterTargetArn",
        "RedrivePolicy.maxReceiveCount": "RedrivePolicy.maxReceiveCount",
        "FifoQueue": "FifoQueue",
        "DelaySeconds": "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    },
    "AWS::DynamoDB::Table": {
        "KeySchema": "KeySchema",
        "AttributeDefinitions": ("AttributeDefinitions", sorted_by("AttributeName")),
        "GlobalSecondaryIndexes": ("GlobalSecondaryIndexes", index_facets),
        "LocalSecondaryIndexes": "LocalSecondaryIndexes",
        "BillingMode": "BillingMode",
        "TimeToLiveSpecification": "TimeToLiveSpecification",
        "PointInTimeRecoveryEnabled": "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled",
        "SSESpecification": "SSESpecification",
        "StreamSpecification": "StreamSpecification",
        "TableName": "TableName",
    },
    "AWS::Lambda::EventSourceMapping": {
        "EventSourceArn": "EventSourceArn",
        "FunctionName": "FunctionName",
        "BatchSize": "BatchSize",
        "MaximumBatchingWindowInSeconds": "MaximumBatchingWindowInSeconds",
        "FunctionResponseTypes": "FunctionResponseTypes",
        "ScalingConfig": "ScalingConfig",
        "Enabled": "Enabled",
        "FilterCriteria": "FilterCriteria",
    },
    "AWS::Logs::LogGroup": {
        "LogGroupName": "LogGroupName",
        "RetentionInDays": "RetentionInDays",
        "KmsKeyId": "KmsKeyId",
    },
    "AWS::CloudWatch::Alarm": {
        key: key
        for key in (
            "AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions",
            "Statistic", "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator",
            "TreatMissingData", "AlarmActions", "OKActions", "InsufficientDataActions",
        )
    },
    "AWS::IAM::Role": {
        "AssumeRolePolicyDocument": ("AssumeRolePolicyDocument", lambda v: trust(v)),
        "Description": "Description",
        "ManagedPolicyArns": ("ManagedPolicyArns", lambda v: sorted(text_of(a) for a in as_list(v))),
        "inline grants": ("Policies", lambda v: sorted(
            line for p in as_list(v) for line in grants(p.get("PolicyDocument")))),
        "allowed actions": role_actions,
        "PermissionsBoundary": "PermissionsBoundary",
    },
    "AWS::IAM::ManagedPolicy": {
        "Description": "Description",
        "grants": ("PolicyDocument", grants),
    },
    "AWS::Lambda::Permission": {
        key: key
        for key in ("Action", "FunctionName", "Principal", "SourceAccount", "SourceArn")
    },
    "AWS::SNS::Topic": {
        "DisplayName": "DisplayName",
        "KmsMasterKeyId": "KmsMasterKeyId",
        "TopicName": "TopicName",
    },
    "AWS::SNS::Subscription": {
        key: key for key in ("TopicArn", "Protocol", "Endpoint")
    },
}


def facets(view: View, resource: dict[str, Any]) -> dict[str, Any]:
    props = resource["Properties"]
    spec = FACETS.get(resource["Type"])
    if spec is None:
        raise Mismatch(f"no facets for {resource['Type']}: add it to FACETS")
    out: dict[str, Any] = {
        "DeletionPolicy": resource["DeletionPolicy"],
        "UpdateReplacePolicy": resource["UpdateReplacePolicy"],
    }
    for name, how in spec.items():
        if callable(how):
            out[name] = how(view, props)
        elif isinstance(how, tuple):
            out[name] = how[1](get(props, how[0]))
        else:
            out[name] = get(props, how)
    return out


# --- comparing -------------------------------------------------------------------------


def compare(sam: View, cdk: View) -> tuple[list[str], dict[str, int]]:
    problems: list[str] = []
    by_type: dict[str, dict[str, list[str]]] = {}
    for label, view in (("SAM", sam), ("CDK", cdk)):
        for name, resource in view.resources.items():
            by_type.setdefault(resource["Type"], {"SAM": [], "CDK": []})[label].append(name)
    counts = {}
    for rtype, names in sorted(by_type.items()):
        counts[rtype] = len(names["SAM"])
        if len(names["SAM"]) != len(names["CDK"]):
            problems.append(f"{rtype}: {len(names['SAM'])} in SAM, {len(names['CDK'])} in CDK")
        for name in sorted(set(names["SAM"]) - set(names["CDK"])):
            problems.append(f"{rtype} {name}: only in SAM")
        for name in sorted(set(names["CDK"]) - set(names["SAM"])):
            problems.append(f"{rtype} {name}: only in CDK")
        for name in sorted(set(names["SAM"]) & set(names["CDK"])):
            left = facets(sam, sam.resources[name])
            right = facets(cdk, cdk.resources[name])
            for facet in left:
                if left[facet] != right[facet]:
                    problems.append(describe(f"{rtype} {name}: {facet}", left[facet], right[facet]))
    for name in sorted(set(sam.outputs) | set(cdk.outputs)):
        if name not in cdk.outputs:
            problems.append(f"output {name}: only in SAM")
        elif name not in sam.outputs:
            problems.append(f"output {name}: only in CDK")
        elif sam.outputs[name] != cdk.outputs[name]:
            problems.append(describe(f"output {name}", sam.outputs[name], cdk.outputs[name]))
    return problems, counts


def describe(what: str, left: Any, right: Any) -> str:
    if isinstance(left, list) and isinstance(right, list) and all(
        isinstance(x, str) for x in left + right
    ):
        lines = [f"{what} differs:"]
        lines += [f"      - SAM only: {x}" for x in left if x not in right]
        lines += [f"      + CDK only: {x}" for x in right if x not in left]
        if len(lines) == 1:
            lines.append(f"      order: SAM {left} / CDK {right}")
        return "\n".join(lines)
    return (f"{what} differs:\n      SAM: {json.dumps(left, sort_keys=True)}\n"
            f"      CDK: {json.dumps(right, sort_keys=True)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam", type=Path, default=ROOT / "infra" / "template.yaml")
    parser.add_argument("--cdk", type=Path, default=ROOT / "target" / "cdk" / "aloft.template.json")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a SAM parameter value other than its default")
    parser.add_argument("--explain", action="store_true",
                        help="list the differences allowed on purpose")
    args = parser.parse_args()

    if args.explain:
        for what, why in ALLOWED:
            print(f"allowed: {what}: {why}")
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param {item}: want NAME=VALUE")
        params[name] = value
    try:
        if not args.cdk.is_file():
            raise Mismatch(f"no CDK template {args.cdk}: run scripts/cdk-synth first")
        sam_cfn = transform_sam(load_yaml(args.sam))
        with open(args.cdk, encoding="utf-8") as f:
            cdk_cfn = json.load(f)
        sam = View("SAM", sam_cfn, {lid: lid for lid in sam_cfn.get("Resources", {})}, params)
        cdk = View("CDK", cdk_cfn, cdk_names(cdk_cfn), {})
        problems, counts = compare(sam, cdk)
    except Mismatch as error:
        print(f"compare-templates: {error}", file=sys.stderr)
        return 1
    if problems:
        print(f"compare-templates: {args.sam} and {args.cdk} disagree "
              f"({len(problems)} difference(s)):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    total = sum(counts.values())
    print(f"compare-templates: SAM and CDK agree: {total} resources of {len(counts)} types, "
          f"{len(sam.outputs)} outputs"
          + (f" (SAM parameters {', '.join(sorted(params))} set)" if params else " (defaults)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
