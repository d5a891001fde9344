"""The views' one timer on AWS: a one-time EventBridge Scheduler schedule that invokes the view
Lambda when the next stored view page is due (``skypi.indexer.views``, ``Views.refresh_due``).

One schedule, :data:`SCHEDULE_NAME`, in the stack's schedule group: created with an ``at(...)``
expression in UTC and ``ActionAfterCompletion: DELETE``, so it removes itself once it has
invoked the function (EventBridge Scheduler User Guide, "Deleting a schedule": for a one-time
schedule, after it has invoked its target once); moved when an earlier page becomes due
(``UpdateSchedule``, the create answering ``ConflictException``). Nothing is armed while no
page is due: an idle index pays for no invocation.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from skypi.store.aws import create_client

log = logging.getLogger("skypi.views")
SCHEDULE_NAME: Final = "skypi-view-refresh"
GROUP_VARIABLE: Final = "SKYPI_VIEW_SCHEDULE_GROUP"
ROLE_VARIABLE: Final = "SKYPI_VIEW_SCHEDULER_ROLE_ARN"
REFRESH_EVENT: Final = {"skypi": "view-refresh"}  # the input the schedule sends the function


class ViewTimer:
    """Arms the one schedule at a moment (callable: ``Views(timer=...)``)."""

    def __init__(self, group: str, role_arn: str, target_arn: str, client: Any = None) -> None:
        self.group, self.role_arn, self.target_arn = group, role_arn, target_arn
        self._client = client

    @classmethod
    def from_environment(cls, target_arn: str) -> ViewTimer | None:
        """The timer the function's environment describes; None when it has no schedule
        group (views' pages are then made again at their next miss only)."""
        group, role = os.environ.get(GROUP_VARIABLE), os.environ.get(ROLE_VARIABLE)
        if not group or not role:
            log.warning(
                "no %s/%s: view pages are not refreshed on time", GROUP_VARIABLE, ROLE_VARIABLE
            )
            return None
        return cls(group, role, target_arn)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = create_client("scheduler")
        return self._client

    def __call__(self, when: datetime) -> None:
        """Have the schedule invoke the function at ``when`` (UTC, to the second)."""
        params: dict[str, Any] = {
            "Name": SCHEDULE_NAME,
            "GroupName": self.group,
            "ScheduleExpression": f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {
                "Arn": self.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps(REFRESH_EVENT),
            },
        }
        try:
            self.client.create_schedule(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            self.client.update_schedule(**params)
