"""`safesnap schedule`: a systemd timer (or a cron.d line) that runs a plan every night."""
