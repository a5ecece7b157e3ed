# A droplet with a block-storage volume for the tracker's database, and the systemd timer that
# runs safesnap every night. The API token safesnap uses is NOT created here: DigitalOcean
# tokens are made in the Control Panel (API -> Generate New Token). Give it custom scopes:
#   block_storage:read/create/delete, block_storage_snapshot:read/create/delete,
#   droplet:read, droplet:snapshot (only for droplet snapshots), image:read/update/delete
#   (transfer of droplet snapshots), snapshot:read/delete, tag:read/create, actions:read
# and put it in /etc/safesnap/.env as DIGITALOCEAN_TOKEN (mode 0600), never in this file.

terraform {
  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "~> 2.40"
    }
  }
}

variable "do_token" {
  description = "Token Terraform itself uses (separate from safesnap's scoped token)."
  type        = string
  sensitive   = true
}

variable "region" {
  type    = string
  default = "nyc3"
}

variable "ssh_key_ids" {
  type    = list(string)
  default = []
}

provider "digitalocean" {
  token = var.do_token
}

resource "digitalocean_volume" "tracker_db" {
  region                  = var.region
  name                    = "tracker-db"
  size                    = 20
  initial_filesystem_type = "ext4"
  description             = "Torrust tracker database; snapshotted by safesnap"
  tags                    = ["tracker"]
}

resource "digitalocean_droplet" "tracker" {
  name      = "tracker"
  region    = var.region
  size      = "s-1vcpu-2gb"
  image     = "debian-12-x64"
  ssh_keys  = var.ssh_key_ids
  user_data = templatefile("${path.module}/cloud-init.yaml", {})
}

resource "digitalocean_volume_attachment" "tracker_db" {
  droplet_id = digitalocean_droplet.tracker.id
  volume_id  = digitalocean_volume.tracker_db.id
}

# DR: volume snapshots cannot leave their region, so the artifacts go to a Space elsewhere.
resource "digitalocean_spaces_bucket" "dr" {
  name   = "tracker-dr-${digitalocean_droplet.tracker.id}"
  region = "fra1"
}

output "volume_id" {
  description = "Put this in the plan: snapshot = { provider = \"digitalocean\", volume_ids = [...] }"
  value       = digitalocean_volume.tracker_db.id
}

output "droplet_id" {
  value = digitalocean_droplet.tracker.id
}
