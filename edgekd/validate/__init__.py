"""edgekd.validate"""
