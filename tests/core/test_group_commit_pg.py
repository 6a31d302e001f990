"""The group-commit tests again on PostgreSQL (savepoints, row locks and a connection per thread)."""

from __future__ import annotations

import pytest

from tests.core.test_group_commit import (  # noqa: F401  (collected here again, on PostgreSQL)
    burst,
    test_a_burst_of_checkins_is_one_transaction_with_an_answer_each,
    test_a_failing_command_rolls_back_to_its_savepoint_only,
    test_a_refused_checkin_does_not_fail_the_others,
    test_when_the_group_cannot_commit_each_runs_alone,
)
from tests.pg import postgres_settings  # noqa: F401  (the app on a throwaway PostgreSQL database)

pytestmark = pytest.mark.integration
