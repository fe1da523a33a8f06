// aloft's AWS backend as a CDK construct: the same resources as infra/template.yaml
// (the SAM template), with the template's parameters as typed props. Keep the two in
// step: scripts/compare-templates checks that they agree.
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  ArnFormat,
  Duration,
  RemovalPolicy,
  Stack,
  Token,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  aws_dynamodb as dynamodb,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_sns as sns,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** The four functions, each built as the binary `aloft-NAME`. */
export const FUNCTION_NAMES = ['trigger', 'plan', 'dispatch', 'complete'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** The queues that feed plan, dispatch and complete. */
type QueueName = Exclude<FunctionName, 'trigger'>;

/** The retention periods CloudWatch Logs accepts (the SAM template's AllowedValues). */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
  2922, 3288, 3653,
];

/**
 * Props of {@link Aloft}. Each but `artifacts` is a parameter of infra/template.yaml
 * (NamePrefix is `namePrefix`, and so on), with the same default. They are plain
 * values, known when the app synthesizes, not CloudFormation parameters.
 */
export interface AloftProps {
  /**
   * The folder holding the functions' deployment packages, one zip per function:
   * aloft-trigger.zip, aloft-plan.zip, aloft-dispatch.zip and aloft-complete.zip
   * (each with the function's `bootstrap` binary for arm64), as `scripts/package`
   * writes them.
   */
  readonly artifacts: string;
  /**
   * Start of the names of the functions (PREFIX-trigger, ...), their log groups and
   * the alarms: two stacks with different prefixes can live in one account and region.
   * @default 'aloft'
   */
  readonly namePrefix?: string;
  /** Days the functions' log groups keep their logs. @default 30 */
  readonly logRetentionDays?: number;
  /** Days a run's history is kept (ALOFT_RUN_RETENTION_DAYS); 0 keeps it forever. @default 90 */
  readonly runRetentionDays?: number;
  /**
   * An e-mail address subscribed to an SNS topic of the construct's own that the alarms
   * notify. Ignored when `alarmTopicArn` is given. @default none
   */
  readonly alarmEmail?: string;
  /** An existing SNS topic the alarms notify. @default none */
  readonly alarmTopicArn?: string;
  /**
   * The Lambda functions workflows run as `lambda` tasks: the only functions aloft may
   * invoke. @default the functions of the stack's account and region named
   * `PREFIX-task-*`
   */
  readonly taskFunctionArns?: string[];
  /** Memory of each function, in MB. @default 128 */
  readonly functionMemorySize?: number;
  /** Receives of a message before its queue moves it to its dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** How long an event source mapping gathers messages, 0 to 30 seconds. @default 0 */
  readonly maximumBatchingWindowInSeconds?: number;
  /** Most concurrent dispatch invocations its queue's mapping starts. @default 10 */
  readonly dispatchMaximumConcurrency?: number;
  /** The EventBridge bus lifecycle events are published on. @default 'default' */
  readonly eventBusName?: string;
  /** The bus `aloft deploy` puts its event rules on (a name). @default 'default' */
  readonly triggerBusName?: string;
  /** Rules named `RULEPREFIX-*` on `triggerBusName` may invoke trigger. @default 'aloft' */
  readonly rulePrefix?: string;
  /** The schedule group whose schedules may assume the scheduler role. @default 'aloft' */
  readonly scheduleGroupName?: string;
}

function checkRange(name: string, value: number, low: number, high: number): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new Error(`Aloft: ${name} must be a whole number from ${low} to ${high}, not ${value}`);
  }
}

function checkPattern(name: string, value: string, pattern: RegExp): void {
  if (Token.isUnresolved(value)) return;
  if (!pattern.test(value)) {
    throw new Error(`Aloft: ${name} ${JSON.stringify(value)} does not match ${pattern}`);
  }
}

/**
 * The table, queues, functions, roles, log groups and alarms of aloft's AWS backend:
 * what infra/template.yaml deploys, resource for resource.
 */
export class Aloft extends Construct {
  public readonly table: dynamodb.Table;
  public readonly queues: Record<QueueName, sqs.Queue>;
  public readonly deadLetterQueues: Record<QueueName, sqs.Queue>;
  public readonly functions: Record<FunctionName, lambda.Function>;
  public readonly logGroups: Record<FunctionName, logs.LogGroup>;
  /** The role EventBridge Scheduler assumes to invoke the trigger function. */
  public readonly schedulerRole: iam.Role;
  /** The policy that lets plan, dispatch and complete start task functions. */
  public readonly invokeTasksPolicy: iam.ManagedPolicy;
  /** The topic the alarms notify, if any. */
  public readonly alarmTopic?: sns.ITopic;
  /** The topic made for `alarmEmail` (none when `alarmTopicArn` is given). */
  public readonly createdAlarmTopic?: sns.Topic;
  public readonly alarms: cloudwatch.Alarm[] = [];
  /**
   * The settings the `aloft` command needs beside the resources' names, as resolved
   * from the props (the SAM template's outputs of the same names).
   */
  public readonly settings: {
    runRetentionDays: number;
    eventBusName: string;
    triggerBusName: string;
    rulePrefix: string;
    scheduleGroupName: string;
  };

  constructor(scope: Construct, id: string, props: AloftProps) {
    super(scope, id);

    const prefix = props.namePrefix ?? 'aloft';
    const logRetentionDays = props.logRetentionDays ?? 30;
    const runRetentionDays = props.runRetentionDays ?? 90;
    const memorySize = props.functionMemorySize ?? 128;
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const batchingWindow = props.maximumBatchingWindowInSeconds ?? 0;
    const dispatchConcurrency = props.dispatchMaximumConcurrency ?? 10;
    const eventBusName = props.eventBusName ?? 'default';
    const triggerBusName = props.triggerBusName ?? 'default';
    const rulePrefix = props.rulePrefix ?? 'aloft';
    const scheduleGroupName = props.scheduleGroupName ?? 'aloft';
    const taskFunctionArns = (props.taskFunctionArns ?? []).filter((arn) => arn !== '');
    const alarmEmail = props.alarmEmail ?? '';
    const alarmTopicArn = props.alarmTopicArn ?? '';

    checkPattern('namePrefix', prefix, /^[a-z0-9][a-z0-9-]{0,29}$/);
    if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
      throw new Error(`Aloft: logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(', ')}`);
    }
    checkRange('runRetentionDays', runRetentionDays, 0, 36500);
    checkRange('functionMemorySize', memorySize, 128, 10240);
    checkRange('maxReceiveCount', maxReceiveCount, 1, 1000);
    checkRange('maximumBatchingWindowInSeconds', batchingWindow, 0, 30);
    checkRange('dispatchMaximumConcurrency', dispatchConcurrency, 2, 1000);
    checkPattern('eventBusName', eventBusName, /^[/.\-_A-Za-z0-9]{1,256}$/);
    checkPattern('triggerBusName', triggerBusName, /^[.\-_A-Za-z0-9]{1,256}$/);
    checkPattern('rulePrefix', rulePrefix, /^[.\-_A-Za-z0-9]{1,20}$/);
    checkPattern('scheduleGroupName', scheduleGroupName, /^[.\-_A-Za-z0-9]{1,64}$/);
    checkPattern(
      'alarmTopicArn',
      alarmTopicArn,
      /^(arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})?$/,
    );

    this.settings = { runRetentionDays, eventBusName, triggerBusName, rulePrefix, scheduleGroupName };

    const stack = Stack.of(this);

    // The state table. Runs and their history outlive the stack.
    this.table = new dynamodb.Table(this, 'Table', {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expires_at',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: 'by_workflow',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    // Sparse: only runs not yet settled carry its keys.
    this.table.addGlobalSecondaryIndex({
      indexName: 'active',
      partitionKey: { name: 'active_pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'active_sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    // The queues and their dead-letter queues. Messages and dead letters are kept 14
    // days, and may be 1 MiB. The visibility timeout is 6 x the functions' timeout plus
    // the largest batching window (30 s).
    const functionTimeout = Duration.seconds(30);
    const visibilityTimeout = Duration.seconds(6 * functionTimeout.toSeconds() + 30);
    const retention = Duration.days(14);
    const maxMessageSizeBytes = 1048576;
    const queueNames: QueueName[] = ['plan', 'dispatch', 'complete'];
    const deadLetterQueues = {} as Record<QueueName, sqs.Queue>;
    const queues = {} as Record<QueueName, sqs.Queue>;
    for (const name of queueNames) {
      const title = capitalize(name);
      deadLetterQueues[name] = new sqs.Queue(this, `${title}DeadLetterQueue`, {
        retentionPeriod: retention,
        maxMessageSizeBytes,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        removalPolicy: RemovalPolicy.DESTROY,
      });
    }
    for (const name of queueNames) {
      const title = capitalize(name);
      queues[name] = new sqs.Queue(this, `${title}Queue`, {
        visibilityTimeout,
        retentionPeriod: retention,
        maxMessageSizeBytes,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        deadLetterQueue: { queue: deadLetterQueues[name], maxReceiveCount },
        removalPolicy: RemovalPolicy.DESTROY,
      });
    }
    this.queues = queues;
    this.deadLetterQueues = deadLetterQueues;

    // Starting task functions: one managed policy shared by plan, dispatch and complete.
    this.invokeTasksPolicy = new iam.ManagedPolicy(this, 'InvokeTasksPolicy', {
      description: 'aloft: start the task functions workflows name',
      statements: [
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources:
            taskFunctionArns.length > 0
              ? taskFunctionArns
              : [
                  stack.formatArn({
                    service: 'lambda',
                    resource: 'function',
                    resourceName: `${prefix}-task-*`,
                    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
                  }),
                ],
        }),
      ],
    });

    // Each function's role names only the calls it makes, as in the SAM template:
    // DynamoDB actions on the table, sqs:SendMessage* on the queues it sends to,
    // events:PutEvents on the bus, and the AWS managed policies SAM attaches (basic
    // execution; SQS queue execution for the functions an SQS queue feeds).
    const tableActions: Record<FunctionName, string[]> = {
      // A start applies the overlap policy: the `active` index, slots, stopped runs.
      trigger: FULL_TABLE_ACTIONS,
      plan: FULL_TABLE_ACTIONS,
      dispatch: FULL_TABLE_ACTIONS,
      complete: FULL_TABLE_ACTIONS,
    };
    const sendsTo: Record<FunctionName, QueueName[]> = {
      trigger: ['plan', 'dispatch', 'complete'],
      plan: ['dispatch', 'plan', 'complete'],
      dispatch: ['dispatch', 'complete', 'plan'],
      complete: ['plan', 'dispatch', 'complete'],
    };
    const descriptions: Record<FunctionName, string> = {
      trigger: 'aloft trigger: creates a run and asks for its planning',
      plan: 'aloft plan: decides which tasks of a run are ready',
      dispatch: "aloft dispatch: takes a task's slots and starts its attempt",
      complete: "aloft complete: records an attempt's result and settles or retries",
    };
    const eventBusArn = stack.formatArn({
      service: 'events',
      resource: 'event-bus',
      resourceName: eventBusName,
    });

    const environment: Record<string, string> = {
      ALOFT_TABLE: this.table.tableName,
      ALOFT_PLAN_QUEUE_URL: queues.plan.queueUrl,
      ALOFT_DISPATCH_QUEUE_URL: queues.dispatch.queueUrl,
      ALOFT_COMPLETE_QUEUE_URL: queues.complete.queueUrl,
      ALOFT_EVENT_BUS: eventBusName,
      // The handlers give a failing message up on the receive the queues redrive at.
      ALOFT_MAX_RECEIVES: String(maxReceiveCount),
      ALOFT_RUN_RETENTION_DAYS: String(runRetentionDays),
    };

    const functions = {} as Record<FunctionName, lambda.Function>;
    const logGroups = {} as Record<FunctionName, logs.LogGroup>;
    for (const name of FUNCTION_NAMES) {
      const title = capitalize(name);
      const fedByQueue = name !== 'trigger';

      const statements = [
        new iam.PolicyStatement({
          actions: tableActions[name],
          // The index `active` tells which runs of a workflow are going.
          resources: [this.table.tableArn, `${this.table.tableArn}/index/active`],
        }),
        ...sendsTo[name].map(
          (queue) =>
            new iam.PolicyStatement({
              actions: ['sqs:SendMessage*'],
              resources: [queues[queue].queueArn],
            }),
        ),
      ];
      statements.push(
        new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [eventBusArn] }),
      );
      const managedPolicies: iam.IManagedPolicy[] = [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole'),
      ];
      if (fedByQueue) {
        managedPolicies.push(
          this.invokeTasksPolicy,
          iam.ManagedPolicy.fromAwsManagedPolicyName(
            'service-role/AWSLambdaSQSQueueExecutionRole',
          ),
        );
      }
      const role = new iam.Role(this, `${title}FunctionRole`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        managedPolicies,
        inlinePolicies: {
          [`${title}FunctionRolePolicy`]: new iam.PolicyDocument({ statements }),
        },
      });

      logGroups[name] = new logs.LogGroup(this, `${title}LogGroup`, {
        logGroupName: `/aws/lambda/${prefix}-${name}`,
        retention: logRetentionDays as logs.RetentionDays,
        // As in the SAM template: the log group goes with the stack.
        removalPolicy: RemovalPolicy.DESTROY,
      });

      functions[name] = new lambda.Function(this, `${title}Function`, {
        functionName: `${prefix}-${name}`,
        description: descriptions[name],
        code: lambda.Code.fromAsset(artifact(props.artifacts, name)),
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        memorySize,
        timeout: functionTimeout,
        // The queues feed one another by design: loop detection must not stop them.
        recursiveLoop: lambda.RecursiveLoop.ALLOW,
        environment,
        role,
        logGroup: logGroups[name],
        loggingFormat: lambda.LoggingFormat.JSON,
      });
    }
    this.functions = functions;
    this.logGroups = logGroups;

    // The queues feed their functions: batches of 10, partial batch responses.
    // Receiving comes from the managed policy above, as with SAM's SQS event.
    for (const name of queueNames) {
      const title = capitalize(name);
      new lambda.EventSourceMapping(this, `${title}Function${title}Queue`, {
        target: functions[name],
        eventSourceArn: queues[name].queueArn,
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(batchingWindow),
        reportBatchItemFailures: true,
        maxConcurrency: name === 'dispatch' ? dispatchConcurrency : undefined,
      });
    }

    // EventBridge Scheduler invokes the trigger function for the schedules of the group.
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: 'aloft: EventBridge Scheduler invokes the trigger function',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'scheduler',
              resource: 'schedule-group',
              resourceName: scheduleGroupName,
            }),
          },
        },
      }),
      inlinePolicies: {
        'invoke-trigger': new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['lambda:InvokeFunction'],
              resources: [functions.trigger.functionArn],
            }),
          ],
        }),
      },
    });

    // EventBridge rules named RULEPREFIX-* on the trigger bus may invoke the trigger
    // function. (A rule's ARN names its bus, except on the default bus.)
    new lambda.CfnPermission(this, 'TriggerRulePermission', {
      action: 'lambda:InvokeFunction',
      functionName: functions.trigger.functionArn,
      principal: 'events.amazonaws.com',
      sourceAccount: stack.account,
      sourceArn: stack.formatArn({
        service: 'events',
        resource: 'rule',
        resourceName:
          triggerBusName === 'default'
            ? `${rulePrefix}-*`
            : `${triggerBusName}/${rulePrefix}-*`,
      }),
    });

    // Alarms notify an existing topic, or a topic of the construct's own subscribed by
    // e-mail, or nobody (they still show in CloudWatch).
    if (alarmTopicArn !== '') {
      this.alarmTopic = sns.Topic.fromTopicArn(this, 'AlarmTopic', alarmTopicArn);
    } else if (alarmEmail !== '') {
      // Not encrypted with SNS's AWS managed key, as in the SAM template: CloudWatch may
      // not publish alarms to a topic under that key. The topic carries only alarm
      // notices.
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: `${prefix} alarms` });
      new sns.Subscription(this, 'AlarmSubscription', {
        topic,
        protocol: sns.SubscriptionProtocol.EMAIL,
        endpoint: alarmEmail,
      });
      this.alarmTopic = topic;
      this.createdAlarmTopic = topic;
    }
    const period = Duration.minutes(5);
    const addAlarm = (id: string, props: cloudwatch.AlarmProps) => {
      const alarm = new cloudwatch.Alarm(this, id, props);
      if (this.alarmTopic) alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic));
      this.alarms.push(alarm);
    };
    for (const name of queueNames) {
      addAlarm(`${capitalize(name)}DeadLetterAlarm`, {
        alarmName: `${prefix}-${name}-dead-letters`,
        alarmDescription: `A message of the ${name} queue was given up and is in its dead-letter queue.`,
        metric: deadLetterQueues[name].metricApproximateNumberOfMessagesVisible({
          statistic: cloudwatch.Stats.MAXIMUM,
          period,
        }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    for (const name of FUNCTION_NAMES) {
      addAlarm(`${capitalize(name)}ErrorAlarm`, {
        alarmName: `${prefix}-${name}-errors`,
        alarmDescription: `The ${name} function failed (an error or a timeout, not a failed task).`,
        metric: functions[name].metricErrors({ statistic: cloudwatch.Stats.SUM, period }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
  }
}

const FULL_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
  'dynamodb:PutItem',
  // A run that settles frees its run slot and wakes a parked message: both delete.
  'dynamodb:DeleteItem',
];

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** The deployment package of one function; it must exist. */
function artifact(folder: string, name: FunctionName): string {
  const file = path.resolve(folder, `aloft-${name}.zip`);
  if (!fs.existsSync(file)) {
    throw new Error(`Aloft: no deployment package ${file} (run scripts/package first)`);
  }
  return file;
}
