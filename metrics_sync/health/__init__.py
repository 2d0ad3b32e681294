"""`metrics-sync health`: is every metric measuring something? (model.py, read.py, judge.py)"""
