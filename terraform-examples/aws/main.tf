# safesnap on AWS: a data volume for the tracker's database, a backup volume for artifacts, and
# an instance profile whose policy allows exactly the EC2 calls safesnap makes
# (docs/how-to/aws.md lists them). Attach the instance profile to the tracker's instance.
#
# Untested against AWS; see README.md.

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
  description = "Region the snapshots are copied to (copy_to in the plan)."
  type        = string
  default     = "eu-west-1"
}

provider "aws" {
  region = var.region
}

# The volume holding the database (snapshotted by safesnap).
resource "aws_ebs_volume" "data" {
  availability_zone = var.availability_zone
  size              = 20
  type              = "gp3"
  encrypted         = true
  tags              = { Name = "tracker-data" }
}

# The attached volume safesnap writes compressed, checksummed artifacts to.
resource "aws_ebs_volume" "backups" {
  availability_zone = var.availability_zone
  size              = 40
  type              = "gp3"
  encrypted         = true
  tags              = { Name = "tracker-backups" }
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
  # Describe calls support no resource-level permissions.
  statement {
    sid       = "Read"
    actions   = ["ec2:DescribeSnapshots", "ec2:DescribeVolumes"]
    resources = ["*"]
  }

  # Snapshots of the data volume only, and only when tagged managed-by=safesnap at creation.
  statement {
    sid       = "SnapshotTheDataVolume"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots"]
    resources = [aws_ebs_volume.data.arn, "arn:aws:ec2:*:*:instance/*"]
  }
  statement {
    sid       = "NewSnapshotsMustBeLabelled"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots", "ec2:CopySnapshot"]
    resources = ["arn:aws:ec2:*::snapshot/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["safesnap"]
    }
  }
  # CopySnapshot also needs permission on the source snapshot: only labelled ones.
  statement {
    sid       = "CopyOnlyLabelled"
    actions   = ["ec2:CopySnapshot"]
    resources = ["arn:aws:ec2:*::snapshot/*"]
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
  # `safesnap snapshots restore`: a new volume from a labelled snapshot.
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
}

resource "aws_iam_role" "safesnap" {
  name               = "safesnap"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy" "safesnap" {
  name   = "safesnap-ebs-snapshots"
  role   = aws_iam_role.safesnap.id
  policy = data.aws_iam_policy_document.safesnap.json
}

resource "aws_iam_instance_profile" "safesnap" {
  name = "safesnap"
  role = aws_iam_role.safesnap.name
}

output "data_volume_id" {
  value = aws_ebs_volume.data.id
}

output "backup_volume_id" {
  value = aws_ebs_volume.backups.id
}

output "instance_profile" {
  value = aws_iam_instance_profile.safesnap.name
}

output "plan_snippet" {
  value = <<-EOT
    [providers.aws]
    region = "${var.region}"

    # in the target:
    snapshot = { provider = "aws", volume_ids = ["${aws_ebs_volume.data.id}"], copy_to = ["${var.dr_region}"], keep_days = 30 }
  EOT
}
