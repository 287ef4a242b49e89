"""edgekd.config"""
