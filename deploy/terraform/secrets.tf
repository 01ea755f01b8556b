# What the tasks get as environment variables, from Secrets Manager: the master key, the
# database and Redis URLs (their passwords generated here) and the provider keys.

resource "random_password" "master_key" {
  keepers = { rotation = var.secrets_rotation }
  length  = 48
  special = false
}

resource "random_password" "database" {
  keepers = { rotation = var.secrets_rotation }
  length  = 40
  special = false # it goes inside DATABASE_URL
}

resource "random_password" "redis" {
  keepers = { rotation = var.secrets_rotation }
  length  = 48
  special = false # it goes inside REDIS_URL
}

locals {
  database_url = "postgresql://modelway:${random_password.database.result}@${aws_db_instance.this.address}:5432/modelway"
  redis_url    = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0"
  secret_values = merge(var.provider_api_keys, {
    MODELWAY_MASTER_KEY = "mw-master-${random_password.master_key.result}"
    DATABASE_URL        = local.database_url
    REDIS_URL           = local.redis_url
  })
}

resource "aws_secretsmanager_secret" "this" {
  # checkov:skip=CKV2_AWS_57: rotating them means restarting every task with new URLs; rotate by re-applying with a new var.secrets_rotation (README)
  name                    = "${var.name}/gateway"
  description             = "modelway: master key, DATABASE_URL, REDIS_URL, provider keys"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id     = aws_secretsmanager_secret.this.id
  secret_string = jsonencode(local.secret_values)
}
