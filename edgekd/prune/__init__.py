"""edgekd.prune"""
