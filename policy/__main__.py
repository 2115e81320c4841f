"""Policy pack entry point: `pulumi preview --policy-pack policy` runs this file, which serves the policies."""

from policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="inference-policies", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
