#!/usr/bin/env bash
# A Jinja template: BashOperator renders files ending in .sh before running them.
echo "Hello {{ params.who }} on {{ ds }}"
echo "script for {{ dag.dag_id }}.{{ task.task_id }}"
echo "done {{ ds_nodash }}"
