# A Hetzner Cloud server for the tracker (database on the server's own disk, so server snapshots
# include it; a Hetzner *volume* cannot be snapshotted at all) and the safesnap timer.
# API tokens are per project and are created in the Cloud Console (project -> Security -> API
# tokens, Read & Write); Terraform cannot create them. Give safesnap its own project or accept
# that its token can manage every resource in the project. Store it in /etc/safesnap/.env as
# HCLOUD_TOKEN (mode 0600), never in this file.

terraform {
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.48"
    }
  }
}

variable "hcloud_token" {
  type      = string
  sensitive = true
}

variable "location" {
  type    = string
  default = "fsn1"
}

variable "ssh_keys" {
  type    = list(string)
  default = []
}

provider "hcloud" {
  token = var.hcloud_token
}

resource "hcloud_server" "tracker" {
  name        = "tracker"
  server_type = "cx22"
  image       = "debian-12"
  location    = var.location
  ssh_keys    = var.ssh_keys
  labels      = { app = "torrust-tracker" }
  user_data   = file("${path.module}/cloud-init.yaml")
}

# Optional: config files or a large MySQL datadir on a volume. safesnap cannot snapshot it
# (no API); the database is dumped/copied as an artifact to the destination and [[replicas]].
resource "hcloud_volume" "data" {
  name      = "tracker-data"
  size      = 10
  server_id = hcloud_server.tracker.id
  automount = true
  format    = "ext4"
}

output "server_id" {
  description = "Put this in the plan: snapshot = { provider = \"hetzner\", server_id = ... }"
  value       = hcloud_server.tracker.id
}
