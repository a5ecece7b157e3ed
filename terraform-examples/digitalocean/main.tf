# safesnap on DigitalOcean: a droplet, a volume holding the tracker's database (snapshotted by
# safesnap), a volume for the artifacts, a Space in another region for their replicas with a
# Spaces key limited to it, and cloud-init installing safesnap and starting its nightly timer.
#
# safesnap's API token is NOT created here (DigitalOcean makes tokens in the Control Panel:
# API -> Tokens -> Generate New Token, "Custom Scopes"). The scopes, as DigitalOcean's OpenAPI
# description names them for each call safesnap makes (tests/specs/digitalocean-openapi.yaml):
#   volume snapshots  block_storage:read, block_storage_snapshot:create,
#                     block_storage_snapshot:read, snapshot:read, snapshot:delete, tag:create,
#                     actions:read
#   droplet snapshots droplet:read, droplet:update and image:create (the snapshot action),
#                     tag:create, snapshot:read, image:delete and snapshot:delete (prune),
#                     image:update (transfer to copy_to regions), actions:read
#   restore           block_storage:create (volume snapshot), droplet:create (droplet snapshot)
# Put it in /etc/safesnap/.env as DIGITALOCEAN_TOKEN (mode 0600), never in this file.
#
# Untested against DigitalOcean (no cloud access where it was written); see README.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "~> 2.44" # digitalocean_spaces_key
    }
  }
}

variable "do_token" {
  description = "Token Terraform itself uses (separate from safesnap's scoped token)."
  type        = string
  sensitive   = true
}

variable "spaces_access_id" {
  description = "A Spaces key Terraform uses to create the bucket (not given to safesnap)."
  type        = string
  sensitive   = true
}

variable "spaces_secret_key" {
  type      = string
  sensitive = true
}

variable "safesnap_package" {
  description = <<-EOT
    What pip installs on the droplet, pinned: a git URL at a commit or tag,
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

variable "region" {
  type    = string
  default = "nyc3"
}

variable "dr_region" {
  description = "Region of the Space receiving the replicas (volume snapshots cannot leave theirs)."
  type        = string
  default     = "fra1"
}

variable "ssh_key_ids" {
  type    = list(string)
  default = []
}

provider "digitalocean" {
  token             = var.do_token
  spaces_access_id  = var.spaces_access_id
  spaces_secret_key = var.spaces_secret_key
}

resource "digitalocean_droplet" "tracker" {
  name      = "tracker"
  region    = var.region
  size      = "s-1vcpu-2gb"
  image     = "debian-12-x64" # Python 3.11, which safesnap needs
  ssh_keys  = var.ssh_key_ids
  user_data = templatefile("${path.module}/cloud-init.yaml", { safesnap_package = var.safesnap_package })
}

# The database volume: safesnap snapshots it (volume snapshots stay in this region).
resource "digitalocean_volume" "tracker_db" {
  region                  = var.region
  name                    = "tracker-db"
  size                    = 20
  initial_filesystem_type = "ext4"
  description             = "Torrust tracker database; snapshotted by safesnap"
  tags                    = ["tracker"]
}

# The attached volume safesnap writes compressed, checksummed artifacts to (destination.path).
resource "digitalocean_volume" "backups" {
  region                  = var.region
  name                    = "tracker-backups"
  size                    = 20
  initial_filesystem_type = "ext4"
  description             = "safesnap artifacts"
}

resource "digitalocean_volume_attachment" "tracker_db" {
  droplet_id = digitalocean_droplet.tracker.id
  volume_id  = digitalocean_volume.tracker_db.id
}

resource "digitalocean_volume_attachment" "backups" {
  droplet_id = digitalocean_droplet.tracker.id
  volume_id  = digitalocean_volume.backups.id
}

# DR: the artifacts go to a Space in another region ([[replicas]] in the plan).
resource "digitalocean_spaces_bucket" "dr" {
  name   = "tracker-dr-${digitalocean_droplet.tracker.id}"
  region = var.dr_region
}

# safesnap's own Spaces key: read and write on the DR bucket only.
resource "digitalocean_spaces_key" "safesnap" {
  name = "safesnap-tracker"
  grant {
    bucket     = digitalocean_spaces_bucket.dr.name
    permission = "readwrite"
  }
}

output "droplet_ipv4" {
  value = digitalocean_droplet.tracker.ipv4_address
}

output "volume_id" {
  description = "The plan's snapshot table: snapshot = { provider = \"digitalocean\", volume_ids = [...] }"
  value       = digitalocean_volume.tracker_db.id
}

output "droplet_id" {
  value = digitalocean_droplet.tracker.id
}

output "replica_bucket" {
  value = digitalocean_spaces_bucket.dr.name
}

output "replica_endpoint_url" {
  value = "https://${var.dr_region}.digitaloceanspaces.com"
}

output "spaces_key" {
  description = "SPACES_KEY for /etc/safesnap/.env"
  value       = digitalocean_spaces_key.safesnap.access_key
  sensitive   = true
}

output "spaces_secret" {
  description = "SPACES_SECRET for /etc/safesnap/.env"
  value       = digitalocean_spaces_key.safesnap.secret_key
  sensitive   = true
}
