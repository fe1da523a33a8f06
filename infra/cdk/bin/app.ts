// An example app: one stack, Aloft, holding the aloft construct with its defaults and
// the outputs of infra/template.yaml. The functions' zips come from the folder named by
// `-c artifacts=DIR` (default: target/lambda-zips of the workspace). Other props may be
// given as a JSON object, `-c 'props={"alarmEmail":"ops@example.com"}'`.
import * as path from 'node:path';

import { App, Aws, CfnOutput, Stack } from 'aws-cdk-lib';

import { Aloft, AloftProps } from '../lib/aloft';

const app = new App();
const artifacts = path.resolve(
  app.node.tryGetContext('artifacts') ?? path.join(__dirname, '..', '..', '..', 'target', 'lambda-zips'),
);

// Environment-agnostic: synthesizes without credentials or lookups; the account and
// region come from the deploy.
const stack = new Stack(app, 'Aloft', {
  description: "aloft's AWS backend: functions, state table, queues and alarms",
});
const overrides: Omit<AloftProps, 'artifacts'> = parseProps(app.node.tryGetContext('props'));
const aloft = new Aloft(stack, 'Aloft', { ...overrides, artifacts });

// The outputs of the SAM template, under the same names.
const outputs: Record<string, [string, string?]> = {
  TableName: [aloft.table.tableName, 'The state table (ALOFT_TABLE).'],
  TriggerFunctionArn: [
    aloft.functions.trigger.functionArn,
    'The target of schedules and rules (ALOFT_TRIGGER_ARN for aloft deploy).',
  ],
  SchedulerRoleArn: [
    aloft.schedulerRole.roleArn,
    'The role schedules invoke the trigger with (ALOFT_SCHEDULER_ROLE_ARN).',
  ],
  RunRetentionDays: [
    String(aloft.settings.runRetentionDays),
    'Days run history is kept (ALOFT_RUN_RETENTION_DAYS for runs aloft start makes).',
  ],
  EventBusName: [aloft.settings.eventBusName, 'The lifecycle events bus (ALOFT_EVENT_BUS).'],
  TriggerBusName: [
    aloft.settings.triggerBusName,
    "The bus of aloft deploy's rules (ALOFT_TRIGGER_BUS).",
  ],
  RulePrefix: [aloft.settings.rulePrefix, "aloft deploy's rule prefix (ALOFT_RULE_PREFIX)."],
  ScheduleGroupName: [
    aloft.settings.scheduleGroupName,
    "aloft deploy's schedule group (ALOFT_SCHEDULE_GROUP).",
  ],
  PlanFunctionArn: [aloft.functions.plan.functionArn],
  DispatchFunctionArn: [aloft.functions.dispatch.functionArn],
  CompleteFunctionArn: [aloft.functions.complete.functionArn],
};
for (const name of ['plan', 'dispatch', 'complete'] as const) {
  const title = name.charAt(0).toUpperCase() + name.slice(1);
  const env = `ALOFT_${name.toUpperCase()}_QUEUE_URL`;
  outputs[`${title}QueueUrl`] = [aloft.queues[name].queueUrl, env];
  outputs[`${title}DeadLetterQueueUrl`] = [aloft.deadLetterQueues[name].queueUrl];
  outputs[`${title}DeadLetterQueueArn`] = [aloft.deadLetterQueues[name].queueArn];
  if (name !== 'complete') outputs[`${title}QueueArn`] = [aloft.queues[name].queueArn];
}
for (const [name, [value, description]] of Object.entries(outputs)) {
  new CfnOutput(stack, name, { value, description });
}
new CfnOutput(stack, 'CompleteQueueArn', {
  value: aloft.queues.complete.queueArn,
  description:
    "The on-success and on-failure destination of every task function's event-invoke " +
    "config; each task function's role needs sqs:SendMessage on it.",
  // The deployed stack's name, as the SAM template's ${AWS::StackName}.
  exportName: `${Aws.STACK_NAME}-CompleteQueueArn`,
});
if (aloft.createdAlarmTopic) {
  new CfnOutput(stack, 'AlarmTopicArn', {
    value: aloft.createdAlarmTopic.topicArn,
    description: 'The SNS topic the alarms notify.',
  });
}

function parseProps(value: unknown): Omit<AloftProps, 'artifacts'> {
  if (value === undefined) return {};
  const props = typeof value === 'string' ? JSON.parse(value) : value;
  if (typeof props !== 'object' || props === null || Array.isArray(props) || 'artifacts' in props) {
    throw new Error('context props: want a JSON object of Aloft props other than artifacts');
  }
  return props;
}
