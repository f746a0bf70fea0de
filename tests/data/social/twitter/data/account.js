window.YTD.account.part0 = [
  {
    "account": {
      "email": "ada@example.com",
      "createdVia": "web",
      "username": "ada",
      "accountId": "42",
      "createdAt": "2010-01-01T00:00:00.000Z",
      "accountDisplayName": "Ada"
    }
  }
]