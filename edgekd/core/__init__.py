"""What every stage uses: errors, the registry, artifacts, hashing, atomic writes, progress."""
