# A Hetzner Cloud server for the tracker (database on the server's own disk, so server snapshots
# include it; a Hetzner *volume* cannot be snapshotted at all) and the safesnap timer.
# API tokens are per project and are created in the Cloud Console (project -> Security -> API
# tokens, Read & Write); Terraform cannot create them. Give safesnap its own project or accept
# that its token can manage every resource in the project. Store it in /etc/safesnap/.env as
# HCLOUD_TOKEN (mode 0600), never in this file.
#
# Untested against Hetzner (no cloud access where it was written); see README.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.48"
    }
  }
}

variable "hcloud_token" {
  description = "Token Terraform itself uses (safesnap's token goes in /etc/safesnap/.env)."
  type        = string
  sensitive   = true
}

variable "safesnap_package" {
  description = <<-EOT
    What pip installs on the server, pinned: a git URL at a commit or tag,
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

variable "location" {
  type    = string
  default = "fsn1"
}

variable "ssh_keys" {
  description = "Names or IDs of SSH keys already in the project (you log in to write the plan)."
  type        = list(string)
  default     = []
}

provider "hcloud" {
  token = var.hcloud_token
}

resource "hcloud_server" "tracker" {
  name        = "tracker"
  server_type = "cx22"
  image       = "debian-12" # Python 3.11, which safesnap needs
  location    = var.location
  ssh_keys    = var.ssh_keys
  labels      = { app = "torrust-tracker" }
  user_data   = templatefile("${path.module}/cloud-init.yaml", { safesnap_package = var.safesnap_package })
}

# The attached volume safesnap writes its compressed, checksummed artifacts to (destination.path).
# Hetzner cannot snapshot volumes, but a volume outlives the server: if the server or its
# snapshots are lost, the artifacts are still here (and in the [[replicas]] bucket, if any).
resource "hcloud_volume" "backups" {
  name      = "tracker-backups"
  size      = 20
  server_id = hcloud_server.tracker.id
  automount = true
  format    = "ext4"
}

output "server_id" {
  description = "Put this in the plan: snapshot = { provider = \"hetzner\", server_id = ... }"
  value       = hcloud_server.tracker.id
}

output "server_ipv4" {
  value = hcloud_server.tracker.ipv4_address
}

output "backup_dir" {
  description = "destination.path for the plan: the automounted backup volume."
  value       = "/mnt/HC_Volume_${hcloud_volume.backups.id}/safesnap"
}
