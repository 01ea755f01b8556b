variable "name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "modelway"
}

variable "image" {
  description = "The gateway image (deploy/Dockerfile), by digest: registry/modelway@sha256:..."
  type        = string
}

variable "vpc_id" {
  description = "The VPC the gateway, database and Redis run in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer (two availability zones at least)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks, the database and Redis (two availability zones at least)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the load balancer's HTTPS listener."
  type        = string
}

variable "allowed_cidr_blocks" {
  description = "Who may reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket for the load balancer's access logs."
  type        = string
}

variable "cpu" {
  description = "Fargate CPU units per task."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Fargate memory per task (MiB)."
  type        = number
  default     = 2048
}

variable "min_tasks" {
  description = "Fewest tasks the autoscaler keeps."
  type        = number
  default     = 2
}

variable "max_tasks" {
  description = "Most tasks the autoscaler starts; also redis.replicas (each task's share of a limit while Redis is down)."
  type        = number
  default     = 10
}

variable "cpu_target_percent" {
  description = "Average CPU the autoscaler aims at."
  type        = number
  default     = 70
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "RDS storage (GiB)."
  type        = number
  default     = 50
}

variable "redis_node_type" {
  description = "ElastiCache Redis node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "provider_api_keys" {
  description = "Provider keys stored in Secrets Manager and given to the tasks, e.g. {OPENAI_API_KEY = \"...\"}: set them through a tfvars file that is not committed. Only the keys named here reach the tasks; the secret is written whole on every apply."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "secrets_rotation" {
  description = "Change this (a date, a counter) and apply to generate a new master key and new database and Redis passwords; the service rolls onto them."
  type        = string
  default     = "1"
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the gateway's logs."
  type        = number
  default     = 365
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
