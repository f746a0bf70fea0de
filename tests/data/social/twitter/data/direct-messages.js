window.YTD.direct_messages.part0 = [
  {
    "dmConversation": {
      "conversationId": "42-77",
      "messages": [
        {
          "messageCreate": {
            "recipientId": "77",
            "reactions": [],
            "urls": [],
            "text": "private hello from me",
            "mediaUrls": [],
            "senderId": "42",
            "id": "800",
            "createdAt": "2019-01-01T10:00:00.000Z"
          }
        },
        {
          "messageCreate": {
            "recipientId": "42",
            "reactions": [],
            "urls": [],
            "text": "private answer",
            "mediaUrls": [],
            "senderId": "77",
            "id": "799",
            "createdAt": "2019-01-01T09:00:00.000Z"
          }
        }
      ]
    }
  }
]