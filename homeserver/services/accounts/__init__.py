"""Accounts: who the users are and how they prove it.

Registration, login and deactivation (`accounts`), user-interactive auth (`uia`), password
hashing, registration tokens, devices, and profiles (which also update the user's member
events in their rooms).
May use: `rooms`, `auth`, `clock`, `ratelimit`.
"""
