output "url" {
  description = "The gateway's address (point a DNS name at the load balancer for the certificate's host)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "load_balancer_dns_name" {
  description = "The load balancer's DNS name, for a CNAME or alias record."
  value       = aws_lb.this.dns_name
}

output "secret_arn" {
  description = "The Secrets Manager secret with MODELWAY_MASTER_KEY, DATABASE_URL, REDIS_URL and the provider keys."
  value       = aws_secretsmanager_secret.this.arn
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "The ECS service (aws ecs update-service --force-new-deployment rolls it)."
  value       = aws_ecs_service.this.name
}

output "log_group" {
  description = "The CloudWatch log group of the gateway's JSON log lines."
  value       = aws_cloudwatch_log_group.this.name
}

output "database_endpoint" {
  description = "RDS PostgreSQL's address."
  value       = aws_db_instance.this.address
}

output "redis_endpoint" {
  description = "ElastiCache Redis's primary address."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}
