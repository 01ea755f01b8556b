resource "aws_lb" "this" {
  # checkov:skip=CKV2_AWS_28: a WAF web ACL is the account's choice (rules, cost); attach one with aws_wafv2_web_acl_association
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # Longer than timeouts.total (600 s by default): a whole answer a slow model takes
  # minutes over sends nothing until it is done, and must not be cut here first.
  idle_timeout = 660
  access_logs {
    bucket  = var.alb_access_logs_bucket
    prefix  = var.name
    enabled = true
  }
  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  name        = var.name
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  # A stopping task leaves the target group first and is drained this long (no new
  # requests; open ones, streams too, go on), then gets SIGTERM: what is still open then
  # has server.shutdown_grace (stopTimeout covers it) and ends with its error event.
  deregistration_delay = 40
  health_check {
    # Ready: the task can serve; with ready_needs_dependencies: false (ecs.tf) a database
    # or Redis outage does not fail every task.
    path                = "/health/ready"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
  tags = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
  tags = var.tags
}
