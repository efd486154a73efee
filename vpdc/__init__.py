"""vpdc-ids: command line and shared configuration."""
