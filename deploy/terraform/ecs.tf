resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  secret_names = sort(keys(local.secret_values))
  # modelway.yaml from the task's own settings: each task's share of a limit while Redis is
  # down is the limit divided by the most tasks there can be; the load balancer, the only
  # peer the tasks' security group lets in, is believed on who each client is and whether
  # it came over HTTPS (X-Forwarded-For, X-Forwarded-Proto: server.trusted_proxies).
  config = "redis: {replicas: ${var.max_tasks}}\nserver: {shutdown_grace: 30, ready_needs_dependencies: false, trusted_proxies: [\"${data.aws_vpc.this.cidr_block}\"]}\n"
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  volume { name = "data" }
  volume { name = "tmp" }
  container_definitions = jsonencode([{
    name      = "modelway"
    image     = var.image
    essential = true
    user      = "10001:10001"
    # The root filesystem is read-only; the config is written into the /tmp volume.
    readonlyRootFilesystem = true
    entryPoint             = ["sh", "-c"]
    command = [
      "printf '%s' \"$MODELWAY_CONFIG_TEXT\" > /tmp/modelway.yaml && exec modelway serve --host 0.0.0.0 --port 8080"
    ]
    portMappings = [{ containerPort = 8080, protocol = "tcp" }]
    environment = [
      { name = "MODELWAY_CONFIG", value = "/tmp/modelway.yaml" },
      { name = "MODELWAY_CONFIG_TEXT", value = local.config },
      { name = "MODELWAY_DATA_DIR", value = "/data" },
      # Unread by the gateway: a new secret version changes the task definition, so the
      # service rolls onto the new values (a secret is read only when a task starts).
      { name = "MODELWAY_SECRETS_VERSION", value = aws_secretsmanager_secret_version.this.version_id },
    ]
    secrets = [for name in local.secret_names : {
      name      = name
      valueFrom = "${aws_secretsmanager_secret.this.arn}:${name}::"
    }]
    mountPoints = [
      { sourceVolume = "data", containerPath = "/data" },
      { sourceVolume = "tmp", containerPath = "/tmp" },
    ]
    healthCheck = {
      command     = ["CMD", "python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2).status == 200 else 1)"]
      interval    = 10
      timeout     = 3
      retries     = 3
      startPeriod = 20
    }
    # SIGTERM, then this long to drain open streams and flush usage records (Fargate: <= 120).
    stopTimeout = 40
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.this.name
        "awslogs-region"        = data.aws_region.current.name
        "awslogs-stream-prefix" = "gateway"
      }
    }
  }])
  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name             = var.name
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.min_tasks
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # A rolling deployment starts new tasks before stopping old ones, and rolls back alone.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  health_check_grace_period_seconds = 30
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = "modelway"
    container_port   = 8080
  }
  lifecycle {
    ignore_changes = [desired_count] # the autoscaler owns it
  }
  depends_on = [aws_lb_listener.https]
  tags       = var.tags
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
