"""MLPerf compliance tests the kit runs. Their settings are facts of the rules, stated once here."""
from __future__ import annotations

from enum import Enum


class ComplianceTest(str, Enum):
    TEST06 = "TEST06"


# compliance/nvidia/TEST06/audit.config: performance mode with ~100 sampled answers logged for accuracy.
TEST06_AUDIT_CONFIG = """\
*.*.mode = 2
*.*.accuracy_log_rng_seed = 720381539243781796
*.*.accuracy_log_sampling_target = 100
*.*.min_query_count = 100
*.*.min_duration = 0
*.*.sample_concatenate_permutation = 0
"""

AUDIT_CONFIGS = {ComplianceTest.TEST06: TEST06_AUDIT_CONFIG}
