"""edgekd.gate"""
