"""edgekd.cli"""
