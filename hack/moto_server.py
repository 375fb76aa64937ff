"""moto's server (the version pinned in requirements-moto.txt) with moto's multi-Region key
replicas stored as AWS keeps them. The tests start moto through this file.

moto 5.2.5's ReplicateKey makes the replica a shallow copy of the primary: the two share one
dict of aliases, one of grants and one list of rotations, so an alias or grant made in one
Region shows in the other, and a test of per-Region aliases or grants would pass whatever the
operator did. It also ignores ReplicateKey's Description, Policy and Tags, replicates
single-Region keys and replicas (HTTP 500), and overwrites a Region's replica instead of
refusing a second one. In AWS (ReplicateKey API reference, "Multi-Region keys in AWS KMS"):

- a replica shares its primary's key ID, material, spec and rotation; its aliases, grants,
  policy, tags, description and enabled state are its own; it is created with the request's
  Description, Policy (else the default key policy) and Tags, and its own CreationDate;
- only a multi-Region primary key is replicated (else UnsupportedOperationException), at most
  once per Region, never into its own (AlreadyExistsException);
- a primary scheduled for deletion while it has replicas is PendingReplicaDeletion.

Only storage is fixed here. AWS's other rules (IAM, key states, quotas, the lockout check) are
the strict layer's, in tests/support/strict.
"""

import json
import sys
from copy import copy

from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.kms import models, responses
from moto.server import main


def replicate_key(self, key_id, replica_region, description=None, policy=None, tags=None):
    primary = self.keys[self.get_key_id(key_id)]
    config = getattr(primary, "multi_region_configuration", None)
    if not primary.multi_region or config is None or primary.arn != config["PrimaryKey"]["Arn"]:
        raise JsonRESTError(
            "UnsupportedOperationException",
            f"{primary.arn} is not a multi-Region primary key; only a primary key can be replicated.",
        )
    taken = [r["Region"] for r in config["ReplicaKeys"]] + [config["PrimaryKey"]["Region"]]
    if replica_region in taken:
        raise JsonRESTError(
            "AlreadyExistsException",
            f"{primary.arn} already has a replica (or its primary) in {replica_region}.",
        )
    replica = copy(primary)
    replica.region = replica_region
    replica.arn = primary.arn.replace(f":{self.region_name}:", f":{replica_region}:", 1)
    replica.creation_date = unix_time()
    replica.aliases = {}
    replica.grants = {}
    replica.rotations = list(primary.rotations)
    replica.deletion_date = None
    replica.key_state = "Enabled"
    replica.enabled = True
    replica.description = description or ""
    replica.policy = policy or replica.generate_default_policy()
    config["ReplicaKeys"].append({"Arn": replica.arn, "Region": replica_region})
    replica.multi_region_configuration = {
        "MultiRegionKeyType": "REPLICA",
        "PrimaryKey": config["PrimaryKey"],
        "ReplicaKeys": config["ReplicaKeys"],
    }
    backend = models.kms_backends[self.account_id][replica_region]
    backend.keys[replica.id] = replica
    if tags:
        backend.tagger.tag_resource(replica.id, tags)
    return replica


def describe_key(self, key_id):
    # moto's own rewrites the shared configuration's type when it describes a replica.
    return self.keys[self.any_id_to_key_id(key_id)]


def schedule_key_deletion(self, key_id, pending_window_in_days):
    deletion = original_schedule_key_deletion(self, key_id, pending_window_in_days)
    key = self.keys[key_id]
    config = getattr(key, "multi_region_configuration", None)
    is_primary = key.multi_region and config is not None and config["PrimaryKey"]["Arn"] == key.arn
    if deletion is not None and is_primary and config["ReplicaKeys"]:
        key.key_state = "PendingReplicaDeletion"
    return deletion


def replicate_key_response(self):
    key_id = self._get_param("KeyId")
    self._validate_key_id(key_id)
    replica = self.kms_backend.replicate_key(
        key_id,
        self._get_param("ReplicaRegion"),
        description=self._get_param("Description"),
        policy=self._get_param("Policy"),
        tags=self._get_param("Tags"),
    )
    return json.dumps({"ReplicaKeyMetadata": replica.to_dict()["KeyMetadata"], "ReplicaPolicy": replica.policy})


original_schedule_key_deletion = models.KmsBackend.schedule_key_deletion
models.KmsBackend.replicate_key = replicate_key
models.KmsBackend.describe_key = describe_key
models.KmsBackend.schedule_key_deletion = schedule_key_deletion
responses.KmsResponse.replicate_key = replicate_key_response

if __name__ == "__main__":
    sys.exit(main())
