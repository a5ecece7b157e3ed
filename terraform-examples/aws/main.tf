# safesnap on AWS: an instance for the tracker with two attached EBS volumes (the database,
# snapshotted by safesnap, and the artifacts), a replica bucket in the DR region, an instance
# profile whose policy allows exactly the calls safesnap makes (docs/how-to/aws.md lists them),
# and cloud-init installing safesnap and starting its nightly timer (systemd/).
#
# Untested against AWS (no cloud access where it was written); see README.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "region" {
  type    = string
  default = "eu-central-1"
}

variable "availability_zone" {
  type    = string
  default = "eu-central-1a"
}

variable "dr_region" {
  description = "Region the snapshots are copied to (copy_to in the plan) and the replica bucket lives in."
  type        = string
  default     = "eu-west-1"
}

variable "safesnap_package" {
  description = <<-EOT
    What pip installs on the instance, pinned: a git URL at a commit or tag,
    "safesnap @ git+https://github.com/OWNER/safesnap.git@v0.1.0", or the HTTPS URL of a wheel
    you built with `pip wheel --no-deps .`, ideally with "#sha256=<hash>" appended.
  EOT
  type        = string
  validation {
    condition = (
      can(regex("^safesnap @ git\\+https://[^\\s'\"]+\\.git@[0-9A-Za-z._/-]+$", var.safesnap_package)) ||
      can(regex("^https://[^\\s'\"#]+\\.whl(#sha256=[0-9a-f]{64})?$", var.safesnap_package))
    )
    error_message = "Use \"safesnap @ git+https://HOST/PATH.git@REF\" or \"https://HOST/PATH.whl[#sha256=HEX]\"."
  }
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "key_name" {
  description = "An EC2 key pair already in the region, to log in and write the plan."
  type        = string
}

variable "admin_cidr" {
  description = "Where SSH may come from, e.g. \"203.0.113.7/32\"."
  type        = string
}

variable "kms_key_arns" {
  description = <<-EOT
    Customer-managed KMS keys the snapshot copies use (kms_key_id in the plan), one per region
    involved. Empty: the copies use the AWS-managed aws/ebs key, whose key policy already lets
    EC2 use it for this account, so the policy needs no KMS statement.
  EOT
  type        = list(string)
  default     = []
}

provider "aws" {
  region = var.region
}

provider "aws" {
  alias  = "dr"
  region = var.dr_region
}

# Debian 12 (Python 3.11, which safesnap needs), published by Debian's own AWS account.
data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"]
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

data "aws_vpc" "default" {
  default = true
}

resource "aws_security_group" "tracker" {
  name        = "tracker-ssh"
  description = "SSH from the admin network; all egress (pip, EC2 and S3 APIs)"
  vpc_id      = data.aws_vpc.default.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.admin_cidr]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "tracker" {
  ami                    = data.aws_ami.debian.id
  instance_type          = var.instance_type
  availability_zone      = var.availability_zone
  key_name               = var.key_name
  vpc_security_group_ids = [aws_security_group.tracker.id]
  iam_instance_profile   = aws_iam_instance_profile.safesnap.name
  user_data = templatefile("${path.module}/cloud-init.yaml", {
    safesnap_package = var.safesnap_package
    service          = file("${path.module}/systemd/safesnap.service")
    timer            = file("${path.module}/systemd/safesnap.timer")
  })
  tags = { Name = "tracker" }
}

# The volume holding the database (snapshotted by safesnap).
resource "aws_ebs_volume" "data" {
  availability_zone = var.availability_zone
  size              = 20
  type              = "gp3"
  encrypted         = true
  tags              = { Name = "tracker-data" }
}

# The attached volume safesnap writes compressed, checksummed artifacts to (destination.path).
resource "aws_ebs_volume" "backups" {
  availability_zone = var.availability_zone
  size              = 40
  type              = "gp3"
  encrypted         = true
  tags              = { Name = "tracker-backups" }
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.tracker.id
}

resource "aws_volume_attachment" "backups" {
  device_name = "/dev/sdg"
  volume_id   = aws_ebs_volume.backups.id
  instance_id = aws_instance.tracker.id
}

# The artifacts' copy in the DR region ([[replicas]] in the plan): private, encrypted at rest.
resource "aws_s3_bucket" "replica" {
  provider      = aws.dr
  bucket_prefix = "tracker-dr-"
}

resource "aws_s3_bucket_public_access_block" "replica" {
  provider                = aws.dr
  bucket                  = aws_s3_bucket.replica.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica" {
  provider = aws.dr
  bucket   = aws_s3_bucket.replica.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256" # SSE-S3: no KMS permissions needed for the uploads
    }
  }
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "safesnap" {
  # Describe calls support no resource-level permissions. safesnap never calls DescribeVolumes.
  statement {
    sid       = "Read"
    actions   = ["ec2:DescribeSnapshots"]
    resources = ["*"]
  }

  # Snapshots of the data volume only (volume_ids in the plan). With instance_id instead,
  # CreateSnapshots takes every volume of the instance: add the root volume's ARN here.
  statement {
    sid       = "SnapshotTheDataVolume"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots"]
    resources = [aws_ebs_volume.data.arn, aws_instance.tracker.arn]
  }
  # ...and only when the new snapshot is tagged managed-by=safesnap in the same request.
  statement {
    sid       = "NewSnapshotsMustBeLabelled"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots"]
    resources = ["arn:aws:ec2:${var.region}::snapshot/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["safesnap"]
    }
  }

  # CopySnapshot is authorized on two resources: the new copy, whose ARN ends in a literal "*"
  # (${*} in the policy language, escaped as $${*} in HCL), and the source, whose ARN ends in
  # its snap- id. One statement for each makes both conditions count: a single statement on
  # snapshot/* with the request-tag condition would also match the source, so any snapshot
  # could be copied as long as the request carried the tag.
  statement {
    sid       = "CopiesMustBeLabelled"
    actions   = ["ec2:CopySnapshot"]
    resources = ["arn:aws:ec2:${var.dr_region}::snapshot/$${*}"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["safesnap"]
    }
  }
  statement {
    sid       = "CopyOnlyLabelled"
    actions   = ["ec2:CopySnapshot"]
    resources = ["arn:aws:ec2:${var.region}::snapshot/snap-*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["safesnap"]
    }
  }

  # TagSpecifications at creation require CreateTags, limited to those create calls.
  statement {
    sid       = "TagOnCreate"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:aws:ec2:*::snapshot/*", "arn:aws:ec2:*:*:volume/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSnapshot", "CreateSnapshots", "CopySnapshot", "CreateVolume"]
    }
  }

  # Prune: only snapshots safesnap labelled (safesnap checks too; this is the second lock).
  statement {
    sid       = "DeleteOnlyLabelled"
    actions   = ["ec2:DeleteSnapshot"]
    resources = ["arn:aws:ec2:*::snapshot/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["safesnap"]
    }
  }

  # `safesnap snapshots restore`: a new, labelled volume from a labelled snapshot.
  statement {
    sid       = "RestoreFromLabelled"
    actions   = ["ec2:CreateVolume"]
    resources = ["arn:aws:ec2:*::snapshot/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["safesnap"]
    }
  }
  statement {
    sid       = "RestoreVolume"
    actions   = ["ec2:CreateVolume"]
    resources = ["arn:aws:ec2:*:*:volume/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["safesnap"]
    }
  }

  # Replicas (src/safesnap/run/replicate.py): upload_file (PutObject, or a multipart upload,
  # which PutObject covers and AbortMultipartUpload cleans up) and HeadObject (GetObject) to
  # check size and checksum. Under the plan's prefix only; nothing can be listed or deleted.
  statement {
    sid       = "ReplicaObjects"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.replica.arn}/safesnap/*"]
  }

  # Copies encrypted with customer-managed keys (kms_key_id in the plan): EBS uses the key
  # through grants it creates for itself, in both the source and the destination region.
  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []
    content {
      sid = "EncryptedCopies"
      actions = [
        "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom", "kms:ReEncryptTo",
      ]
      resources = var.kms_key_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "EncryptedCopiesGrants"
      actions   = ["kms:CreateGrant"]
      resources = var.kms_key_arns
      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
}

resource "aws_iam_role" "safesnap" {
  name               = "safesnap"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy" "safesnap" {
  name   = "safesnap"
  role   = aws_iam_role.safesnap.id
  policy = data.aws_iam_policy_document.safesnap.json
}

resource "aws_iam_instance_profile" "safesnap" {
  name = "safesnap"
  role = aws_iam_role.safesnap.name
}

output "instance_public_ip" {
  value = aws_instance.tracker.public_ip
}

output "data_volume_id" {
  value = aws_ebs_volume.data.id
}

output "backup_volume_id" {
  value = aws_ebs_volume.backups.id
}

output "replica_bucket" {
  value = aws_s3_bucket.replica.id
}

output "plan_snippet" {
  description = "The provider, snapshot and replica parts of /etc/safesnap/plan.toml."
  value       = <<-EOT
    [providers.aws]
    region = "${var.region}"

    [[targets]]
    name = "tracker"
    engine = "sqlite"
    path = "/var/lib/torrust/tracker/database/sqlite3.db"
    snapshot = { provider = "aws", volume_ids = ["${aws_ebs_volume.data.id}"], copy_to = ["${var.dr_region}"], encrypted = true, keep_days = 30 }

    [[replicas]]
    name = "dr"
    bucket = "${aws_s3_bucket.replica.id}"
    region = "${var.dr_region}"
  EOT
}
